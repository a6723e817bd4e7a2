"""What model calls cost: a per-model price table and a pure cost function.

The process's table is ``process_state().prices``; ``timestep.set_price`` and friends act on it.

Prices are USD per million tokens, as ``float``: costs are estimates for dashboards and budgets,
not invoices, and float error (~1e-16 relative) is far below the precision of any price list.

Lookups (``PriceTable.get_price``) try, in order:

1. the exact name (``"ollama/gpt-oss:120b-cloud"`` if you priced it so);
2. free for prefixes in ``free_prefixes`` (default ``{"ollama"}``: local models cost nothing);
3. the name without its provider prefix (``"openai/gpt-4.1"`` -> ``"gpt-4.1"``);
4. that name without a dated snapshot suffix (``"gpt-4.1-2025-04-14"`` -> ``"gpt-4.1"``).

An unknown model has no price: ``cost_of`` returns ``None`` rather than 0, so "free" and
"unknown" never look alike in a report. Price it with ``set_price``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["DEFAULT_PRICES", "ModelPrice", "PriceTable"]

_PER_TOKENS = 1_000_000
# OpenAI snapshot suffixes: "-2025-04-14" (current) and "-0613" (older models).
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens for one model."""

    input: float
    """Uncached input (prompt) tokens, including tokens written to the prompt cache."""

    output: float
    """Output tokens, reasoning tokens included (they are billed as output)."""

    cached_input: float | None = None
    """Input tokens served from the prompt cache; ``None`` bills them at ``input``."""

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and value >= 0):
                raise ValueError(f"ModelPrice.{name} must be a number >= 0, not {value!r}")

    @property
    def cached_input_rate(self) -> float:
        """The rate cached input tokens are billed at."""
        return self.input if self.cached_input is None else self.cached_input

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """USD for one call. ``cached_input_tokens`` is the cached part of ``input_tokens``."""
        for name, value in (
            ("input_tokens", input_tokens),
            ("output_tokens", output_tokens),
            ("cached_input_tokens", cached_input_tokens),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, not {value}")
        if cached_input_tokens > input_tokens:
            raise ValueError(
                f"cached_input_tokens ({cached_input_tokens}) cannot exceed input_tokens "
                f"({input_tokens}): cached tokens are part of the input"
            )
        uncached = input_tokens - cached_input_tokens
        return (
            uncached * self.input
            + cached_input_tokens * self.cached_input_rate
            + output_tokens * self.output
        ) / _PER_TOKENS


DEFAULT_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        # OpenAI standard-tier list prices (USD / 1M tokens: input, output, cached input).
        # They change; override with set_price() rather than trusting these blindly.
        "gpt-4.1": ModelPrice(input=2.00, output=8.00, cached_input=0.50),
        "gpt-4.1-mini": ModelPrice(input=0.40, output=1.60, cached_input=0.10),
        "gpt-4.1-nano": ModelPrice(input=0.10, output=0.40, cached_input=0.025),
        "gpt-4o": ModelPrice(input=2.50, output=10.00, cached_input=1.25),
        "gpt-4o-mini": ModelPrice(input=0.15, output=0.60, cached_input=0.075),
        "o3": ModelPrice(input=2.00, output=8.00, cached_input=0.50),
        "o4-mini": ModelPrice(input=1.10, output=4.40, cached_input=0.275),
        "gpt-5": ModelPrice(input=1.25, output=10.00, cached_input=0.125),
        "gpt-5-mini": ModelPrice(input=0.25, output=2.00, cached_input=0.025),
        "gpt-5-nano": ModelPrice(input=0.05, output=0.40, cached_input=0.005),
    }
)
"""Built-in prices, read-only. ``PriceTable()`` starts from a copy."""

_FREE = ModelPrice(input=0.0, output=0.0, cached_input=0.0)


class PriceTable:
    """Model prices, with prefix- and snapshot-tolerant lookups (see the module docstring).

    Thread-safe: the durable runtime may price calls from several worker threads.
    """

    def __init__(
        self,
        prices: Mapping[str, ModelPrice] | None = None,
        *,
        include_defaults: bool = True,
        free_prefixes: Iterable[str] = ("ollama",),
    ) -> None:
        self._lock = threading.Lock()
        self._include_defaults = include_defaults
        self._prices: dict[str, ModelPrice] = dict(DEFAULT_PRICES) if include_defaults else {}
        self._free_prefixes = frozenset(free_prefixes)
        for model, price in (prices or {}).items():
            self._prices[_check_model(model)] = _check_price(price)

    @property
    def free_prefixes(self) -> frozenset[str]:
        """Provider prefixes whose models cost nothing unless priced explicitly."""
        return self._free_prefixes

    def set_price(
        self, model: str, *, input: float, output: float, cached_input: float | None = None
    ) -> ModelPrice:
        """Price ``model`` (USD per million tokens) and return the new ``ModelPrice``.

        ``model`` may carry a prefix (``"ollama/gpt-oss:120b-cloud"``) to price only that route.
        """
        price = ModelPrice(input=input, output=output, cached_input=cached_input)
        with self._lock:
            self._prices[_check_model(model)] = price
        return price

    def reset(self) -> None:
        """Back to the prices the table started with (every ``set_price`` dropped)."""
        with self._lock:
            self._prices = dict(DEFAULT_PRICES) if self._include_defaults else {}

    def remove_price(self, model: str) -> None:
        """Forget ``model``'s own entry; raises ``KeyError`` if it has none."""
        with self._lock:
            del self._prices[model]

    def get_prices(self) -> dict[str, ModelPrice]:
        """A copy of every explicit entry (free prefixes are not listed)."""
        with self._lock:
            return dict(self._prices)

    def get_price(self, model: str) -> ModelPrice | None:
        """The price that applies to ``model``, or ``None`` if unknown."""
        with self._lock:
            exact = self._prices.get(model)
            if exact is not None:
                return exact
            prefix, separator, bare = model.partition("/")
            if not separator:
                bare = model
            elif prefix in self._free_prefixes:
                return _FREE
            found = self._prices.get(bare)
            if found is None:
                undated = _SNAPSHOT_SUFFIX.sub("", bare)
                if undated != bare:
                    found = self._prices.get(undated)
            return found

    def cost_of(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
    ) -> float | None:
        """USD for a call to ``model``, or ``None`` if the model has no price.

        ``input_tokens`` includes ``cached_input_tokens`` (as in the OpenAI usage object); the
        cached part is billed at the cached rate, the rest at the input rate.
        """
        price = self.get_price(model)
        if price is None:
            return None
        return price.cost(input_tokens, output_tokens, cached_input_tokens)

    def cost_of_usage(self, model: str, usage: Any) -> float | None:
        """``cost_of`` for an ``agents.Usage`` (or anything shaped like it)."""
        details = getattr(usage, "input_tokens_details", None)
        cached = getattr(details, "cached_tokens", 0) or 0
        return self.cost_of(model, usage.input_tokens, usage.output_tokens, cached)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.get_price(model) is not None

    def __repr__(self) -> str:
        return (
            f"PriceTable({len(self._prices)} models, free_prefixes={sorted(self._free_prefixes)})"
        )


def _check_model(model: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"a model name must be a non-empty string, not {model!r}")
    return model


def _check_price(price: ModelPrice) -> ModelPrice:
    if not isinstance(price, ModelPrice):
        raise TypeError(f"expected a ModelPrice, not {type(price).__name__}")
    return price
