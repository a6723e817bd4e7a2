"""The process's price table, as module-level functions (``timestep.set_price`` and friends).

The table itself (``PriceTable``, ``ModelPrice``, ``DEFAULT_PRICES``) lives in the core, beside
the usage it costs: every durable model call's row is costed with ``process_state().prices``.
"""

from __future__ import annotations

from timestep._core.prices import DEFAULT_PRICES, ModelPrice, PriceTable
from timestep._core.process import process_state

__all__ = [
    "DEFAULT_PRICES",
    "ModelPrice",
    "PriceTable",
    "cost_of",
    "get_price",
    "get_price_table",
    "reset_prices",
    "set_price",
]


def get_price_table() -> PriceTable:
    """The process-wide table used by the functions below."""
    return process_state().prices


def set_price(
    model: str, *, input: float, output: float, cached_input: float | None = None
) -> ModelPrice:
    """``PriceTable.set_price`` on the process-wide table."""
    return process_state().prices.set_price(
        model, input=input, output=output, cached_input=cached_input
    )


def get_price(model: str) -> ModelPrice | None:
    """``PriceTable.get_price`` on the process-wide table."""
    return process_state().prices.get_price(model)


def cost_of(
    model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> float | None:
    """``PriceTable.cost_of`` on the process-wide table: USD, or ``None`` for an unknown model."""
    return process_state().prices.cost_of(model, input_tokens, output_tokens, cached_input_tokens)


def reset_prices() -> None:
    """Restore the process-wide table to ``DEFAULT_PRICES`` (drops every ``set_price``)."""
    process_state().prices.reset()
