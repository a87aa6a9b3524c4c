"""Settings: one pydantic model per function, validated once from the environment.

No other module reads os.environ. A missing or invalid variable fails with its name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from domain.costs import ModelPrice
from domain.entities import PHONE_REGIONS
from domain.errors import ConfigurationError

EngineName = Literal["pipeline", "agent", "hybrid"]
DEFAULT_SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
DEFAULT_HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# Powertools, which applies the level, accepts any case (LOG_LEVEL=debug); so must this check.
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]


def _is_path(annotation: Any) -> bool:
    return annotation is Path or any(_is_path(arg) for arg in get_args(annotation))


class _Settings(BaseSettings):
    # defer_build: a function validates only its own settings model; the others cost nothing.
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True, defer_build=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        # `ROUTER_HOME=` means unset to a shell user; as a path it would be "." (this directory).
        # Paths only: elsewhere an empty value can be deliberate (BEDROCK_CLASSIFIER_MODEL_ID= is off).
        if value == "" and info.field_name is not None and _is_path(cls.model_fields[info.field_name].annotation):
            raise PydanticUseDefault
        return value

    log_level: LogLevel = "INFO"
    router_taxonomy: Path | None = None
    router_model_dir: Path | None = None
    # Maps a trained model's labels to teams when the labels are not taxonomy categories.
    router_label_team_map: Path | None = None


class RuntimeSettings(_Settings):
    """What the Lambda runtime tells a function about itself."""

    aws_lambda_function_name: str | None = None

    @property
    def in_lambda(self) -> bool:
        return self.aws_lambda_function_name is not None


class RoutingSettings(_Settings):
    """What any process that routes tickets needs, locally or in the orchestrator."""

    routing_engine: EngineName = "pipeline"
    bedrock_model_id: str = DEFAULT_SONNET
    bedrock_classifier_model_id: str | None = DEFAULT_HAIKU
    bedrock_region: str = "us-east-1"
    escalation_threshold: float = Field(default=0.70, ge=0.0, le=1.0)
    model_provider: Literal["bedrock", "openai", "ollama", "anthropic"] = "bedrock"
    model_id: str | None = None
    model_endpoint: str | None = None
    model_api_key: str | None = None
    model_max_tokens: int = Field(default=600, ge=64, le=4096)
    model_read_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # The second opinion answers one short JSON line: given the main model's 10 s, it and the call that
    # reads it (24 s at worst) never fitted the orchestrator's 23 s, and it was never asked.
    second_opinion_read_timeout_seconds: float = Field(default=4.0, gt=0, le=60)
    # JSON {"model id or part of it": {"input": .., "output": .., "cache_read": .., "cache_write": ..}},
    # US dollars per million tokens, over the built-in table: for models it does not price.
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    agent_max_tool_calls: int = Field(default=4, ge=0, le=20)
    router_default_region: Annotated[str, BeforeValidator(_upper)] = "US"

    @field_validator("router_default_region")
    @classmethod
    def _known_phone_region(cls, value: str) -> str:
        # National numbers are read, and masked before a model sees them, as this region's: one with
        # no rules of its own was read as US, and its numbers went to the model as written.
        if value not in PHONE_REGIONS:
            raise ValueError(f"must be one of {', '.join(PHONE_REGIONS)}")
        return value


class LocalSettings(RoutingSettings):
    """The embedded mode: SQLite, JSON files, a JSONL outbox."""

    router_home: Path = Path(".ticket-router")
    router_db: Path | None = None
    router_customers_file: Path | None = None
    router_services_file: Path | None = None
    router_outbox: Path | None = None
    router_api_key: str | None = Field(default=None, min_length=16)

    @field_validator("router_api_key")
    @classmethod
    def _sendable_key(cls, value: str | None) -> str | None:
        # Clients send the key in a header, which loses surrounding spaces on the way and carries
        # other characters as bytes that decode differently: such a key would never match, and
        # every request would get 403 with nothing to say why.
        if value is not None and not re.fullmatch(r"[!-~](?:[ -~]*[!-~])?", value):
            raise ValueError("must be printable ASCII, without leading or trailing spaces (it travels in a header)")
        return value

    @property
    def db_path(self) -> Path:
        return self.router_db or self.router_home / "ticket-router.db"

    @property
    def outbox_path(self) -> Path:
        return self.router_outbox or self.router_home / "outbox.jsonl"

    @property
    def outbox_name(self) -> str:
        """The outbox as an error names it: by the variable that put it where it is."""
        return f"the outbox ({'ROUTER_OUTBOX' if self.router_outbox else 'in ROUTER_HOME'})"


class IngestionSettings(_Settings):
    eventbridge_bus_name: str = Field(min_length=1)
    customer_db_endpoint: str = Field(min_length=1)
    # Optional because the reference design does not list them for ingestion: without the table,
    # GET /tickets answers 503; without the idempotency table, duplicates are caught per container.
    routing_decisions_table: str | None = Field(default=None, min_length=1)
    customer_cache_table: str | None = None
    idempotency_table: str | None = None
    customer_cache_ttl_seconds: int = Field(default=900, ge=0)
    http_timeout_seconds: float = Field(default=3.0, gt=0)


class OrchestratorSettings(RoutingSettings):
    routing_decisions_table: str = Field(min_length=1)
    customer_db_endpoint: str = Field(min_length=1)
    service_status_endpoint: str = Field(min_length=1)
    customer_cache_table: str | None = None
    customer_cache_ttl_seconds: int = Field(default=900, ge=0)
    http_timeout_seconds: float = Field(default=3.0, gt=0)
    routing_engine: EngineName = "hybrid"


class TicketingUpdateSettings(_Settings):
    # When unset, the table is the one whose stream invoked the function (from eventSourceARN).
    routing_decisions_table: str | None = Field(default=None, min_length=1)
    ticketing_system_endpoint: str = Field(min_length=1)
    ticketing_system_api_key_secret: str = Field(min_length=1)
    max_retries: int = Field(default=5, ge=0, le=10)
    retry_delay_base: float = Field(default=1.0, ge=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)


S = TypeVar("S", bound=_Settings)


def load_settings(model: type[S]) -> S:
    """Validate the environment into `model`, naming each variable at fault."""
    try:
        return model()
    except ValidationError as exc:
        problems = "; ".join(
            f"{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid environment for {model.__name__}: {problems}") from exc
    except SettingsError as exc:
        # A complex field (a JSON mapping such as MODEL_PRICES) that is not JSON fails before
        # validation, with the field's name in the message only.
        field = re.search(r'field "([^"]+)"', str(exc))
        name = field.group(1).upper() if field else "?"
        raise ConfigurationError(f"invalid environment for {model.__name__}: {name}: not valid JSON") from exc


def running_in_lambda() -> bool:
    return load_settings(RuntimeSettings).in_lambda
