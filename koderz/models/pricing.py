"""Token costs: per call and per problem (a CostLedger)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from koderz.models.base import Usage

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


@dataclass
class CostLedger:
    """The calls of one problem with their costs and totals. ``baseline`` holds the prices of the
    ``baseline_model``: the frontier-only estimate prices every token at it; savings = estimate - actual.
    """

    baseline: Prices
    calls: list[CallCost] = field(default_factory=list)

    def record_for(self, phase: str, cfg: Any, usage: Usage) -> CallCost:
        """Add one call by the model ``cfg`` (name, tier, prices); ``phase``: the phase's ledger key
        (``PhaseSpec.ledger``). Returns the call with its cost."""
        call = CallCost(phase, cfg.name, cfg.tier, usage, cost_of(usage, cfg))
        self.calls.append(call)
        return call

    @property
    def total_cost(self) -> float:
        return sum(call.cost for call in self.calls)

    @property
    def usage(self) -> Usage:
        return sum((call.usage for call in self.calls), Usage())

    @property
    def frontier_estimate(self) -> float:
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
