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
    """Price ``model`` on the process-wide table, for usage costs and ``cost_usd`` budgets.

    ``model`` may carry a prefix (``"ollama/gpt-oss:120b-cloud"``) to price only that route.

    Args:
        model: The model name, prefixed or not.
        input: USD per million input tokens.
        output: USD per million output tokens.
        cached_input: USD per million cached input tokens (default: the input rate).

    Returns:
        The new price.

    Raises:
        ValueError: The model name is empty, or a rate is negative.
    """
    return process_state().prices.set_price(
        model, input=input, output=output, cached_input=cached_input
    )


def get_price(model: str) -> ModelPrice | None:
    """``PriceTable.get_price`` on the process-wide table."""
    return process_state().prices.get_price(model)


def cost_of(
    model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> float | None:
    """The cost of a call to ``model``, on the process-wide table.

    Args:
        model: The model name, prefixed or not (``"ollama/..."`` is free unless priced).
        input_tokens: Input tokens, ``cached_input_tokens`` included (as OpenAI counts them).
        output_tokens: Output tokens.
        cached_input_tokens: The input tokens billed at the cached rate.

    Returns:
        USD, or ``None`` for a model without a price.
    """
    return process_state().prices.cost_of(model, input_tokens, output_tokens, cached_input_tokens)


def reset_prices() -> None:
    """Restore the process-wide table to ``DEFAULT_PRICES`` (drops every ``set_price``)."""
    process_state().prices.reset()
