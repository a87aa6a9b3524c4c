"""Customer directory and service status read from JSON files: the embedded mode's stand-ins for
the customer DB and the status API, with the same fields as their HTTP twins."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from domain.errors import ConfigurationError
from domain.models import CustomerProfile, ServiceStatus

SAMPLE_DATA_DIR = Path(__file__).with_name("sample_data")
DEFAULT_CUSTOMERS_FILE = SAMPLE_DATA_DIR / "customers.json"
DEFAULT_SERVICES_FILE = SAMPLE_DATA_DIR / "services.json"

_PROFILES = TypeAdapter(list[CustomerProfile])


def _read_json(path: Path, what: str) -> Any:
    try:
        # utf-8-sig: Windows editors start UTF-8 with a byte-order mark, as the taxonomy reader allows.
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{what} file not found: {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{what} file {path} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        # The json module recurses per level of nesting; no customer or status snapshot nests deeply.
        raise ConfigurationError(f"{what} file {path} is JSON nested too deeply to read") from exc


def _json_kind(document: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(document), "a number")


def _describe(exc: ValidationError, what: str, path: Path) -> ConfigurationError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return ConfigurationError(f"{what} file {path}: {where}: {first['msg']}")


class JsonCustomerDirectory:
    """CustomerDirectory over a JSON array of profiles (or an object with a `customers` array)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else DEFAULT_CUSTOMERS_FILE
        document = _read_json(self.path, "customers")
        if isinstance(document, dict):
            if "customers" not in document:
                # Read as no customers, every VIP would be routed as an unknown consumer, silently.
                keys = ", ".join(map(repr, list(document)[:5])) or "none"
                raise ConfigurationError(
                    f'customers file {self.path}: expected a JSON array of profiles, or an object with a "customers"'
                    f" array; this object has no such key (its keys: {keys})"
                )
            document = document["customers"]
        if not isinstance(document, list):
            # pydantic's word for it names no field ("Input should be a valid list" at nowhere).
            raise ConfigurationError(
                f"customers file {self.path}: expected a JSON array of profiles, not {_json_kind(document)}"
            )
        try:
            profiles = _PROFILES.validate_python(document)
        except ValidationError as exc:
            raise _describe(exc, "customers", self.path) from exc
        self._profiles: dict[str, CustomerProfile] = {}
        for index, profile in enumerate(profiles):
            earlier = self._profiles.setdefault(profile.customer_id, profile)
            if earlier != profile:
                # One of the two would win unseen, VIP status and services with it.
                raise ConfigurationError(
                    f"customers file {self.path}: {index}: customer_id {profile.customer_id!r} is listed"
                    " again with another profile; keep one"
                )

    def get_profile(self, customer_id: str) -> CustomerProfile:
        return self._profiles.get(customer_id) or CustomerProfile.unknown(customer_id)


class JsonServiceStatusProvider:
    """ServiceStatusProvider over a JSON snapshot shaped like the status API's batch answer."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else DEFAULT_SERVICES_FILE
        document = _read_json(self.path, "services")
        if not isinstance(document, dict):
            # pydantic's word for it names no field, and the model's class instead.
            raise ConfigurationError(
                f'services file {self.path}: expected a JSON object with an "outages" list, not {_json_kind(document)}'
            )
        if "outages" not in document:
            # The model's default, no outages, would hide a misspelt or misplaced list: every
            # outage override and service-impact point would be lost without a word.
            keys = ", ".join(map(repr, list(document)[:5])) or "none"
            raise ConfigurationError(
                f'services file {self.path}: has no "outages" list (its keys: {keys}); write "outages": [] for none'
            )
        try:
            self._status = ServiceStatus.model_validate(document)
        except ValidationError as exc:
            raise _describe(exc, "services", self.path) from exc

    def get_status(self, service_ids: Sequence[str]) -> ServiceStatus:
        # The real API answers for the services asked about; mirror that so evidence matches.
        wanted = {service_id.casefold() for service_id in service_ids}
        return self._status.model_copy(
            update={"outages": tuple(o for o in self._status.outages if o.service_id.casefold() in wanted)}
        )
