"""The model clients the composition root builds: each provider's client is held to one attempt
within the time the agent reserves for a call."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from domain.errors import ConfigurationError
from handlers.model_factory import build_model, model_call_worst_case_seconds
from handlers.settings import RoutingSettings


@pytest.mark.parametrize(
    ("provider", "module", "cls"),
    [
        ("openai", "strands.models.openai", "OpenAIModel"),
        ("anthropic", "strands.models.anthropic", "AnthropicModel"),
        ("ollama", "strands.models.ollama", "OllamaModel"),
    ],
)
def test_every_provider_s_client_is_held_to_one_attempt_within_the_call_budget(
    monkeypatch: pytest.MonkeyPatch, provider: str, module: str, cls: str
) -> None:
    # Given a provider whose SDK (an optional extra, absent here) records what its client is given
    built: dict[str, Any] = {}

    class RecordingModel:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.update(kwargs)

    fake = types.ModuleType(module)
    setattr(fake, cls, RecordingModel)
    monkeypatch.setitem(sys.modules, module, fake)
    settings = RoutingSettings(model_provider=provider, model_id="some-model", model_read_timeout_seconds=7.0)

    # When the model is built
    build_model(settings)

    # Then its client times out within the agent's budget for one call, and does not retry
    budget = model_call_worst_case_seconds(settings)
    if provider == "ollama":
        assert built["ollama_client_args"] == {"timeout": budget}  # httpx options: no retries to turn off
    else:
        assert (built["client_args"]["timeout"], built["client_args"]["max_retries"]) == (budget, 0)


@pytest.mark.parametrize("option", ["model_id", "model_endpoint", "model_api_key"])
def test_another_provider_s_setting_with_bedrock_is_refused_naming_it(option: str) -> None:
    # Given the default provider, Bedrock, and a setting only the other providers read
    settings = RoutingSettings(**{option: "amazon.nova-pro"})
    # When the model is built, then it is refused, naming the variable, rather than silently
    # routing (and billing) with BEDROCK_MODEL_ID's model
    with pytest.raises(ConfigurationError) as refused:
        build_model(settings)
    assert str(refused.value).startswith(f"{option.upper()} applies to MODEL_PROVIDER=openai, ollama or anthropic")
    assert "BEDROCK_MODEL_ID" in str(refused.value)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
def test_another_provider_without_a_model_id_is_refused(provider: str) -> None:
    # Given a provider other than Bedrock and no MODEL_ID
    settings = RoutingSettings(model_provider=provider)
    # When the model is built, then it is refused: Bedrock's inference profile id, sent to that
    # provider instead, would fail every call
    with pytest.raises(ConfigurationError) as refused:
        build_model(settings)
    assert str(refused.value) == f"MODEL_PROVIDER={provider} needs MODEL_ID, the model's name at that provider"
