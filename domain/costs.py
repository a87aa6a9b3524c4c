"""What model calls cost: a price table per model, applied to token usage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domain.models import ModelUsage

PER_MILLION = 1_000_000


class ModelPrice(BaseModel):
    """US dollars per million tokens."""

    # An infinite price (MODEL_PRICES' JSON takes Infinity, and 1e400 reads as one) made every
    # ticket's cost infinite: a value no store holds, dropped from the decision as if it were free.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float = Field(ge=0)
    cache_write: float = Field(ge=0)


# Public on-demand prices; cache reads at 10% and writes at 125% of the input price.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0, cache_read=0.30, cache_write=3.75),
    "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cache_read=0.10, cache_write=1.25),
}


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True)

    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))

    def price_for(self, model_id: str) -> ModelPrice | None:
        """Exact id first, then the longest key contained in the id (region prefixes, versions)."""
        if model_id in self.prices:
            return self.prices[model_id]
        matches = [key for key in self.prices if key in model_id]
        return self.prices[max(matches, key=len)] if matches else None

    def cost(self, model_id: str, usage: ModelUsage) -> float:
        price = self.price_for(model_id)
        if price is None:
            return 0.0
        return (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_read_tokens * price.cache_read
            + usage.cache_write_tokens * price.cache_write
        ) / PER_MILLION
