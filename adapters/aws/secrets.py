"""The ticketing system's API key, read from Secrets Manager through Powertools (cached)."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from adapters.aws.client_config import aws_client_config
from domain.errors import ConfigurationError

_KEY_FIELDS = ("api_key", "token")
# Printable ASCII: what an Authorization header can carry as the server will read it.
_HEADER_SAFE = re.compile(r"[\x20-\x7e]+")


class SecretsManagerApiKey:
    """Callable returning the API key; Powertools caches it for `max_age` seconds per instance.

    A secret that is a JSON object with an "api_key" (or else "token") string yields that value;
    any other secret string is the key itself.
    `refresh()` reads the secret again whatever the cache holds, and caches what it read: for a
    caller whose key was refused, since after a rotation the cached key stays stale for `max_age`.
    Failures raise ConfigurationError naming the secret and the AWS error code; callers that
    can replay later (the ticketing adapter) turn it into their own transient error.
    """

    def __init__(self, secret_id: str, *, client: Any = None, max_age: int = 300) -> None:
        self.secret_id = secret_id
        self.max_age = max_age
        self._client = client
        self._provider: SecretsProvider | None = None

    @property
    def provider(self) -> SecretsProvider:
        if self._provider is None:
            # A provider per instance keeps the cache ours, not the module-level default one
            # other code (or parameters.clear_caches()) might reset.
            self._provider = SecretsProvider(
                boto3_client=self._client, boto_config=None if self._client else aws_client_config()
            )
        return self._provider

    def __call__(self) -> str:
        return self._read(force_fetch=False)

    def refresh(self) -> str:
        return self._read(force_fetch=True)

    def _read(self, *, force_fetch: bool) -> str:
        try:
            value = self.provider.get(self.secret_id, max_age=self.max_age, force_fetch=force_fetch)
        except GetParameterError as exc:
            cause = exc.__cause__
            code = cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""
            raise ConfigurationError(f"cannot read secret {self.secret_id}: {code or exc}") from exc
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"secret {self.secret_id} is empty")
        key = _extract_key(value.strip()).strip()
        if not _HEADER_SAFE.fullmatch(key):
            # The key goes into an Authorization header: requests refuses a line break with the
            # whole value quoted in its error, and http.client a non-Latin-1 character with it in
            # the exception, which would carry the key into logs and the decision's sync_error.
            # Said here without the value.
            raise ConfigurationError(
                f"secret {self.secret_id} holds an API key with control or non-ASCII characters; store the key alone"
            )
        return key


def _extract_key(raw: str) -> str:
    if not raw.startswith("{"):
        return raw
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if isinstance(document, dict):
        for field in _KEY_FIELDS:
            value = document.get(field)
            if isinstance(value, str) and value:
                return value
    return raw
