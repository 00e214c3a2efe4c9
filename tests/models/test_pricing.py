"""Costs per call, per problem and per run, and the frontier-only estimate."""

from __future__ import annotations

import pytest

from koderz.models.base import Usage
from koderz.models.config import ModelConfig
from koderz.models.pricing import CostLedger, Prices, cost_of

SONNET = Prices(price_input=3.0, price_output=15.0, price_cached_input=0.3)
MINI = ModelConfig(
    name="gpt-4o-mini", tier="small_frontier", price_input=0.15, price_output=0.6, price_cached_input=0.075
)
LOCAL = ModelConfig(provider="ollama", name="qwen2.5-coder:32b", tier="local")


def test_cost_prices_cached_input_tokens_at_the_cached_rate():
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cached_input_tokens=400_000)
    assert cost_of(usage, MINI) == pytest.approx(0.6 * 0.15 + 0.4 * 0.075 + 0.5 * 0.6)


def test_cached_price_none_means_the_input_price():
    cfg = ModelConfig(price_input=2.0, price_output=8.0, price_cached_input=None)
    assert cost_of(Usage(1_000_000, 0, 1_000_000), cfg) == pytest.approx(2.0)


def test_local_models_cost_nothing():
    assert cost_of(Usage(123_456, 7_890, 0), LOCAL) == 0.0


def test_ledger_totals_by_tier_phase_tokens_and_savings():
    ledger = CostLedger(SONNET)
    ledger.record_for("spec", LOCAL, Usage(1000, 200))
    ledger.record_for("attempt", MINI, Usage(2000, 500, 1000))
    ledger.record_for("checkpoint", MINI, Usage(3000, 100))

    mini_attempt = (1000 * 0.15 + 1000 * 0.075 + 500 * 0.6) / 1e6
    mini_review = (3000 * 0.15 + 100 * 0.6) / 1e6
    assert ledger.total_cost == pytest.approx(mini_attempt + mini_review)
    assert ledger.by_tier() == pytest.approx({"local": 0.0, "small_frontier": mini_attempt + mini_review})
    assert ledger.by_phase() == pytest.approx({"spec": 0.0, "attempt": mini_attempt, "checkpoint": mini_review})
    assert ledger.usage == Usage(6000, 800, 1000)
    estimate = (5000 * 3.0 + 1000 * 0.3 + 800 * 15.0) / 1e6
    assert ledger.frontier_estimate == pytest.approx(estimate)
    assert ledger.savings == pytest.approx(estimate - ledger.total_cost)


def test_the_baseline_model_is_composed_by_hydra_like_the_other_roles():
    from tests.conftest import plan

    assert Prices.of(plan().baseline) == SONNET  # the default: claude-sonnet-4-5
    assert plan("model@baseline_model=gpt-4o-mini").baseline.name == "gpt-4o-mini"
