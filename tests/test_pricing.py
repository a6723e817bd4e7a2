"""Model prices and the cost function."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from agents import Usage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from timestep.providers import (
    DEFAULT_PRICES,
    ModelPrice,
    PriceTable,
    cost_of,
    get_price,
    get_price_table,
    reset_prices,
    set_price,
)


@pytest.fixture(autouse=True)
def _restore_global_prices() -> Iterator[None]:
    reset_prices()
    yield
    reset_prices()


EXPECTED_DEFAULTS = {
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
}


def test_defaults_cover_current_openai_models() -> None:
    assert DEFAULT_PRICES.keys() >= EXPECTED_DEFAULTS
    for model, price in DEFAULT_PRICES.items():
        assert price.output >= price.input > 0, model
        assert 0 < price.cached_input_rate <= price.input, model
    with pytest.raises(TypeError):
        DEFAULT_PRICES["gpt-4.1"] = ModelPrice(input=0, output=0)  # type: ignore[index]


def test_cost_of_default_model() -> None:
    # gpt-4.1: $2 in, $8 out per million.
    assert cost_of("gpt-4.1", 1_000_000, 0) == pytest.approx(2.0)
    assert cost_of("gpt-4.1", 0, 1_000_000) == pytest.approx(8.0)
    assert cost_of("gpt-4.1", 1234, 567) == pytest.approx((1234 * 2 + 567 * 8) / 1e6)
    assert cost_of("gpt-4.1", 0, 0) == 0.0


def test_cached_tokens_are_part_of_input_and_billed_at_cached_rate() -> None:
    # 1000 input tokens of which 400 cached: 600 x $2 + 400 x $0.50, plus 100 x $8 output.
    assert cost_of("gpt-4.1", 1000, 100, cached_input_tokens=400) == pytest.approx(
        (600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6
    )
    with pytest.raises(ValueError, match="cannot exceed input_tokens"):
        cost_of("gpt-4.1", 100, 0, cached_input_tokens=101)
    with pytest.raises(ValueError, match="output_tokens must be >= 0"):
        cost_of("gpt-4.1", 100, -1)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("openai/gpt-4.1", "gpt-4.1"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("openai/gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("o3-2025-04-16", "o3"),
        ("litellm/gpt-5-mini", "gpt-5-mini"),
    ],
)
def test_lookup_strips_prefixes_and_snapshots(name: str, canonical: str) -> None:
    assert get_price(name) == DEFAULT_PRICES[canonical]


def test_snapshot_stripping_does_not_confuse_model_families() -> None:
    # "gpt-4.1-mini" is its own model, not a snapshot of "gpt-4.1".
    assert get_price("gpt-4.1-mini") != get_price("gpt-4.1")
    assert get_price("gpt-4.1-turbo") is None


def test_ollama_models_are_free_by_default() -> None:
    for model in ("ollama/llama3.2", "ollama/gpt-oss:20b-cloud", "ollama/gpt-4.1"):
        assert cost_of(model, 10_000, 10_000, cached_input_tokens=5) == 0.0
    # Without the prefix the name routes to OpenAI, so it is not assumed free.
    assert cost_of("llama3.2", 1, 1) is None


def test_unknown_model_costs_none_not_zero() -> None:
    assert get_price("my-finetune") is None
    assert cost_of("my-finetune", 1000, 1000) is None
    assert cost_of("custom/whatever", 1000, 1000) is None


def test_set_price_overrides_and_adds() -> None:
    set_price("gpt-4.1", input=1.0, output=4.0, cached_input=0.25)
    assert cost_of("openai/gpt-4.1-2025-04-14", 1_000_000, 1_000_000) == pytest.approx(5.0)

    price = set_price("my-finetune", input=3.0, output=12.0)
    assert price.cached_input is None and price.cached_input_rate == 3.0
    # Without a cached rate, cached tokens cost the same as uncached ones.
    assert cost_of("my-finetune", 1000, 0, cached_input_tokens=1000) == pytest.approx(0.003)

    # A prefixed entry prices just that route, even for a free provider.
    set_price("ollama/gpt-oss:120b-cloud", input=0.5, output=1.0)
    assert cost_of("ollama/gpt-oss:120b-cloud", 1_000_000, 0) == pytest.approx(0.5)
    assert cost_of("ollama/gpt-oss:20b-cloud", 1_000_000, 0) == 0.0

    reset_prices()
    assert get_price("gpt-4.1") == DEFAULT_PRICES["gpt-4.1"]
    assert get_price("my-finetune") is None
    assert get_price_table() is get_price_table()


def test_invalid_prices_are_rejected() -> None:
    with pytest.raises(ValueError, match="input"):
        set_price("m", input=-1, output=1)
    with pytest.raises(ValueError, match="cached_input"):
        ModelPrice(input=1, output=1, cached_input=-0.1)
    with pytest.raises(ValueError, match="model name"):
        set_price(" ", input=1, output=1)
    with pytest.raises(TypeError):
        PriceTable({"m": (1, 2)})  # type: ignore[dict-item]


def test_price_table_objects_are_independent() -> None:
    mine = PriceTable({"house-model": ModelPrice(input=1, output=2)}, include_defaults=False)
    assert mine.get_prices() == {"house-model": ModelPrice(input=1, output=2)}
    assert mine.cost_of("gpt-4.1", 1, 1) is None
    assert "house-model" in mine and "gpt-4.1" not in mine
    assert get_price("house-model") is None  # the process-wide table is untouched

    paid_ollama = PriceTable(free_prefixes=())
    assert paid_ollama.get_price("ollama/llama3.2") is None
    assert paid_ollama.get_price("ollama/gpt-4.1") == DEFAULT_PRICES["gpt-4.1"]

    mine.remove_price("house-model")
    with pytest.raises(KeyError):
        mine.remove_price("house-model")

    copy = mine.get_prices()
    copy["x"] = ModelPrice(input=1, output=1)
    assert "x" not in mine


def test_cost_of_usage_reads_sdk_usage() -> None:
    usage = Usage(
        requests=1,
        input_tokens=1000,
        output_tokens=100,
        total_tokens=1100,
        input_tokens_details=InputTokensDetails(cached_tokens=400, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=30),
    )
    table = PriceTable()
    assert table.cost_of_usage("gpt-4.1", usage) == table.cost_of("gpt-4.1", 1000, 100, 400)


def test_table_is_safe_across_threads() -> None:
    table = PriceTable()

    def writer(index: int) -> None:
        for step in range(200):
            table.set_price(f"m{index}-{step}", input=1, output=1)
            assert table.get_price("openai/gpt-4.1-2025-04-14") is not None

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(table.get_prices()) == len(DEFAULT_PRICES) + 8 * 200
