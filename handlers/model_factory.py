"""Part of the composition root: builds the model-backed engines (agent, hybrid) from settings.

Strands is imported lazily, so the pipeline engine never pays for it.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.engines.agent import AgentEngine
from adapters.engines.hybrid import HybridEngine
from adapters.engines.pipeline import PipelineEngine
from domain.costs import DEFAULT_PRICES, PriceTable
from domain.errors import ConfigurationError
from domain.ports import RoutingEngine
from domain.toolkit import RoutingToolkit
from handlers.settings import RoutingSettings

MODEL_CONNECT_TIMEOUT_SECONDS = 2.0


def model_call_worst_case_seconds(settings: RoutingSettings) -> float:
    """The longest one model call can take, whichever the provider (each client is built to it): the
    agent starts a call only with this much time left.

    One attempt, no retry in botocore or in Strands: a retry (with botocore's backoff and up to 5 s
    of x-amz-retry-after) would make the worst case about 30 s, all of the orchestrator's 30 s, and
    leave no room for a second call. A failed call instead ends in the pipeline's decision, flagged
    for review, which is what the engines fall back to anyway.
    """
    return MODEL_CONNECT_TIMEOUT_SECONDS + settings.model_read_timeout_seconds


def second_opinion_worst_case_seconds(settings: RoutingSettings) -> float:
    """The longest one second-opinion call can take (one attempt, as for the main model): with the
    call of the main model that reads its answer, what the agent needs left to ask for it."""
    return MODEL_CONNECT_TIMEOUT_SECONDS + settings.second_opinion_read_timeout_seconds


def _sdk_client_limits(settings: RoutingSettings) -> dict[str, Any]:
    """For the OpenAI and Anthropic SDK clients, which retry twice and wait minutes by default:
    the same one attempt within the same time as a Bedrock call, so the agent's deadline holds."""
    return {"timeout": model_call_worst_case_seconds(settings), "max_retries": 0}


def _bedrock_client_config(settings: RoutingSettings, read_timeout: float | None = None) -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=MODEL_CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.model_read_timeout_seconds if read_timeout is None else read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )


def build_model(settings: RoutingSettings) -> tuple[Any, str]:
    """The Strands model for the configured provider, and the model id used for pricing."""
    provider = settings.model_provider
    if provider == "bedrock":
        # These name another provider's model: ignored, Bedrock would answer (and bill) with
        # BEDROCK_MODEL_ID's model while the user believes theirs is the one routing.
        given = [name for name in ("model_id", "model_endpoint", "model_api_key") if getattr(settings, name)]
        if given:
            names = ", ".join(name.upper() for name in given)
            verb = "applies" if len(given) == 1 else "apply"
            raise ConfigurationError(
                f"{names} {verb} to MODEL_PROVIDER=openai, ollama or anthropic, not bedrock (the default): "
                "set MODEL_PROVIDER, or name a Bedrock model with BEDROCK_MODEL_ID"
            )
        from strands.models import BedrockModel

        model = BedrockModel(
            model_id=settings.bedrock_model_id,
            region_name=settings.bedrock_region,
            streaming=False,
            temperature=0.1,
            max_tokens=settings.model_max_tokens,
            boto_client_config=_bedrock_client_config(settings),
        )
        return model, settings.bedrock_model_id
    if not settings.model_id:
        # BEDROCK_MODEL_ID's default is a Bedrock inference profile, which no other provider
        # knows: every call would fail, each ticket falling back to the pipeline.
        raise ConfigurationError(f"MODEL_PROVIDER={provider} needs MODEL_ID, the model's name at that provider")
    model_id = settings.model_id
    try:
        if provider == "openai":
            from strands.models.openai import OpenAIModel

            client_args = {"api_key": settings.model_api_key, "base_url": settings.model_endpoint}
            return OpenAIModel(
                client_args={k: v for k, v in client_args.items() if v} | _sdk_client_limits(settings),
                model_id=model_id,
                params={"temperature": 0.1, "max_tokens": settings.model_max_tokens},
            ), model_id
        if provider == "ollama":
            from strands.models.ollama import OllamaModel

            return OllamaModel(
                settings.model_endpoint or "http://127.0.0.1:11434",
                # The ollama client takes httpx's options; it does not retry.
                ollama_client_args={"timeout": model_call_worst_case_seconds(settings)},
                model_id=model_id,
                temperature=0.1,
                max_tokens=settings.model_max_tokens,
            ), model_id
        if provider == "anthropic":
            from strands.models.anthropic import AnthropicModel

            return AnthropicModel(
                client_args=({"api_key": settings.model_api_key} if settings.model_api_key else {})
                | _sdk_client_limits(settings),
                model_id=model_id,
                max_tokens=settings.model_max_tokens,
                params={"temperature": 0.1},
            ), model_id
    except ImportError as exc:
        raise ConfigurationError(
            f"MODEL_PROVIDER={provider} needs its extra: pip install 'ticket-router[{provider}]' ({exc.name} missing)"
        ) from exc
    raise ConfigurationError(f"MODEL_PROVIDER={provider!r} is not supported")


# Claude models that Bedrock offers no prompt caching for: it refuses a request holding a cache point
# ("You invoked an unsupported model or your request did not allow prompt caching"), so every call
# of the agent would fail. Claude 3.5 Sonnet (v2) had it in a closed preview only.
_CLAUDE_WITHOUT_PROMPT_CACHING = re.compile(r"claude-(?:v2|instant|3-(?:opus|sonnet|haiku)|3-5-sonnet)")


def _supports_prompt_caching(model_id: str) -> bool:
    lowered = model_id.lower()
    claude = any(marker in lowered for marker in ("anthropic", "claude"))
    return claude and not _CLAUDE_WITHOUT_PROMPT_CACHING.search(lowered)


def build_second_opinion(settings: RoutingSettings, prices: PriceTable) -> Any | None:
    if settings.model_provider != "bedrock" or not settings.bedrock_classifier_model_id:
        return None
    from adapters.engines.bedrock_classifier import BedrockClassifier

    return BedrockClassifier(
        model_id=settings.bedrock_classifier_model_id,
        region=settings.bedrock_region,
        categories=None,
        client_config=_bedrock_client_config(settings, settings.second_opinion_read_timeout_seconds),
    )


def build_model_engine(
    settings: RoutingSettings,
    *,
    toolkit: RoutingToolkit,
    pipeline: PipelineEngine,
    model: Any | None = None,
    model_id: str | None = None,
) -> RoutingEngine:
    prices = PriceTable(prices={**DEFAULT_PRICES, **settings.model_prices})
    if model is None:
        model, model_id = build_model(settings)
    model_id = model_id or settings.bedrock_model_id
    second_opinion = build_second_opinion(settings, prices)
    # A model without a price would report every ticket as free, hiding the cost per ticket the
    # deployment is judged on. (A local Ollama model is free indeed.)
    priced = [model_id] + ([settings.bedrock_classifier_model_id or ""] if second_opinion is not None else [])
    unpriced = [m for m in priced if prices.price_for(m) is None]
    if unpriced and settings.model_provider != "ollama":
        raise ConfigurationError(
            f"no price is known for model {unpriced[0]!r}: set MODEL_PRICES, e.g. "
            '{"' + unpriced[0] + '": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}} '
            "(US dollars per million tokens)"
        )
    if second_opinion is not None:
        second_opinion.categories = list(toolkit.taxonomy.category_names)
    agent = AgentEngine(
        toolkit=toolkit,
        pipeline=pipeline,
        model=model,
        model_id=model_id,
        prices=prices,
        max_tool_calls=settings.agent_max_tool_calls,
        min_seconds_per_call=model_call_worst_case_seconds(settings),
        second_opinion=second_opinion,
        second_opinion_seconds=second_opinion_worst_case_seconds(settings),
        # Bedrock prompt caching for Claude: the tool specs and system prompt are the same for
        # every ticket, so they are written to the cache once and read at a tenth of the price.
        cache_static_prompt=settings.model_provider == "bedrock" and _supports_prompt_caching(model_id),
    )
    if settings.routing_engine == "agent":
        return agent
    return HybridEngine(pipeline, agent, escalation_threshold=settings.escalation_threshold)
