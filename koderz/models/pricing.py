"""Token costs: per call, per problem (a CostLedger) and per run (ledgers merged)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from koderz.models.base import Usage

PHASES = ("spec", "attempt", "checkpoint")
PER_TOKEN = 1e-6  # prices are USD per million tokens


class Priced(Protocol):
    """Anything with a model's prices (a ModelConfig, its DictConfig, ``Prices``)."""

    @property
    def price_input(self) -> float: ...

    @property
    def price_output(self) -> float: ...

    @property
    def price_cached_input(self) -> float | None: ...


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; ``price_cached_input`` None = same as input."""

    price_input: float = 0.0
    price_output: float = 0.0
    price_cached_input: float | None = None

    @classmethod
    def of(cls, cfg: Priced) -> Prices:
        return cls(cfg.price_input, cfg.price_output, cfg.price_cached_input)


def cost_of(usage: Usage, cfg: Priced) -> float:
    """USD for ``usage``: cached input tokens (a part of input_tokens) at the cached price."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_price = cfg.price_input if cfg.price_cached_input is None else cfg.price_cached_input
    return PER_TOKEN * (
        (usage.input_tokens - cached) * cfg.price_input + cached * cached_price + usage.output_tokens * cfg.price_output
    )


@dataclass(frozen=True)
class CallCost:
    """One model call as the ledger records it."""

    phase: str
    model: str
    tier: str
    usage: Usage
    cost: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "model": self.model,
            "tier": self.tier,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cached_input_tokens": self.usage.cached_input_tokens,
            "cost": self.cost,
        }


@dataclass
class CostLedger:
    """The calls of one problem (or, merged, of a run) with their costs and totals.

    ``baseline`` holds the prices of the ``baseline_model``: the frontier-only estimate
    is every recorded token priced at the baseline, and savings = estimate - actual.
    """

    baseline: Prices
    calls: list[CallCost] = field(default_factory=list)

    def record(self, phase: str, model: str, tier: str, usage: Usage, prices: Priced) -> CallCost:
        """Add one call; returns it with its cost."""
        if phase not in PHASES:
            raise ValueError(f"phase={phase!r}; expected one of {PHASES}")
        call = CallCost(phase, model, tier, usage, cost_of(usage, prices))
        self.calls.append(call)
        return call

    def record_for(self, phase: str, cfg: Any, usage: Usage) -> CallCost:
        """``record`` with name, tier and prices taken from a model config."""
        return self.record(phase, cfg.name, cfg.tier, usage, cfg)

    @classmethod
    def merged(cls, baseline: Prices, ledgers: Iterable[CostLedger]) -> CostLedger:
        """A run ledger holding the calls of every problem ledger."""
        return cls(baseline, [call for ledger in ledgers for call in ledger.calls])

    def merge(self, other: CostLedger) -> None:
        """Append ``other``'s calls (e.g. a finished problem into the run total)."""
        self.calls.extend(other.calls)

    @property
    def total_cost(self) -> float:
        return sum(call.cost for call in self.calls)

    @property
    def usage(self) -> Usage:
        return sum((call.usage for call in self.calls), Usage())

    @property
    def frontier_estimate(self) -> float:
        """The same tokens, every call priced at the baseline model."""
        return math.fsum(cost_of(call.usage, self.baseline) for call in self.calls)

    @property
    def savings(self) -> float:
        return self.frontier_estimate - self.total_cost

    def _cost_by(self, attr: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for call in self.calls:
            out[getattr(call, attr)] += call.cost
        return dict(out)

    def by_tier(self) -> dict[str, float]:
        return self._cost_by("tier")

    def by_phase(self) -> dict[str, float]:
        return self._cost_by("phase")

    def by_model(self) -> dict[str, float]:
        return self._cost_by("model")

    def to_dict(self, include_calls: bool = False) -> dict[str, Any]:
        """JSON-ready totals (and every call when ``include_calls``)."""
        usage = self.usage
        out: dict[str, Any] = {
            "total_cost": self.total_cost,
            "by_tier": self.by_tier(),
            "by_phase": self.by_phase(),
            "by_model": self.by_model(),
            "calls": len(self.calls),
            "tokens": {
                "input": usage.input_tokens,
                "output": usage.output_tokens,
                "cached_input": usage.cached_input_tokens,
            },
            "frontier_estimate": self.frontier_estimate,
            "savings": self.savings,
        }
        if include_calls:
            out["call_log"] = [call.to_dict() for call in self.calls]
        return out
