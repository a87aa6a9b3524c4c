"""SecretsManagerApiKey against moto: formats, Powertools caching, failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from adapters.aws.secrets import SecretsManagerApiKey
from adapters.http.ticketing import HttpTicketingSystem
from domain.errors import ConfigurationError, SyncUnavailable
from tests.http_servers import FakeTicketingSystem
from tests.integration.conftest import REGION, a_decision

SECRET = "ticketing/api-key"


@pytest.fixture
def secretsmanager(aws: None) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def fetches(secretsmanager: Any) -> Iterator[list[str]]:
    """GetSecretValue calls actually sent by this client (counted by a botocore event hook)."""
    calls: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["SecretId"])

    secretsmanager.meta.events.register("provide-client-params.secrets-manager.GetSecretValue", count)
    yield calls
    secretsmanager.meta.events.unregister("provide-client-params.secrets-manager.GetSecretValue", count)


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [
        ("plain-key-0123456789", "plain-key-0123456789"),
        ('{"api_key": "json-key-0123456789", "note": "rotated monthly"}', "json-key-0123456789"),
        ('{"token": "token-0123456789"}', "token-0123456789"),
        ('{"username": "svc", "password": "pw"}', '{"username": "svc", "password": "pw"}'),
        ("  padded-key  \n", "padded-key"),
        ('{"api_key": "padded-json-key\\n"}', "padded-json-key"),
    ],
)
def test_the_key_is_read_from_plain_or_json_secrets(secretsmanager: Any, secret_string: str, expected: str) -> None:
    # Given a secret in one of the accepted shapes
    secretsmanager.create_secret(Name=SECRET, SecretString=secret_string)

    # When the key is asked for / Then the key itself comes back
    assert SecretsManagerApiKey(SECRET, client=secretsmanager)() == expected


def test_a_second_call_within_max_age_is_served_from_the_cache(secretsmanager: Any, fetches: list[str]) -> None:
    # Given a secret and a key reader caching for five minutes
    secretsmanager.create_secret(Name=SECRET, SecretString="key-v1-0123456789")
    api_key = SecretsManagerApiKey(SECRET, client=secretsmanager, max_age=300)

    # When the key is read, then rotated, then read again within max_age
    first = api_key()
    secretsmanager.put_secret_value(SecretId=SECRET, SecretString="key-v2-0123456789")
    second = api_key()

    # Then Secrets Manager was called once and the cached key was reused
    assert fetches == [SECRET]
    assert first == second == "key-v1-0123456789"


def test_with_max_age_zero_every_call_sees_the_current_secret(secretsmanager: Any, fetches: list[str]) -> None:
    # Given a key reader that does not cache
    secretsmanager.create_secret(Name=SECRET, SecretString="key-v1-0123456789")
    api_key = SecretsManagerApiKey(SECRET, client=secretsmanager, max_age=0)

    # When the secret is rotated between two reads
    first = api_key()
    secretsmanager.put_secret_value(SecretId=SECRET, SecretString="key-v2-0123456789")
    second = api_key()

    # Then the rotation is visible at once
    assert (first, second) == ("key-v1-0123456789", "key-v2-0123456789")
    assert len(fetches) == 2


def test_refresh_bypasses_the_cache_and_later_calls_see_the_new_key(secretsmanager: Any, fetches: list[str]) -> None:
    # Given a key read and cached for five minutes, then rotated in Secrets Manager
    secretsmanager.create_secret(Name=SECRET, SecretString="key-v1-0123456789")
    api_key = SecretsManagerApiKey(SECRET, client=secretsmanager, max_age=300)
    api_key()
    secretsmanager.put_secret_value(SecretId=SECRET, SecretString="key-v2-0123456789")

    # When the key is refreshed within max_age
    refreshed = api_key.refresh()

    # Then Secrets Manager was asked again, and the cache now holds the new key
    assert refreshed == "key-v2-0123456789"
    assert api_key() == "key-v2-0123456789"
    assert fetches == [SECRET, SECRET]


def test_a_missing_secret_raises_configuration_error(secretsmanager: Any) -> None:
    # Given no secret
    api_key = SecretsManagerApiKey("no/such/secret", client=secretsmanager)

    # When / Then the error names the secret and the AWS code
    with pytest.raises(ConfigurationError, match=r"no/such/secret.*ResourceNotFoundException"):
        api_key()


def test_without_an_injected_client_a_default_one_is_created(secretsmanager: Any) -> None:
    # Given a secret, and a reader built from the secret id only (as the sync Lambda does)
    secretsmanager.create_secret(Name=SECRET, SecretString="default-client-key")

    # When / Then it reads the key from the default region
    assert SecretsManagerApiKey(SECRET)() == "default-client-key"


def test_a_sync_without_a_readable_key_is_unavailable_and_sends_nothing(secretsmanager: Any) -> None:
    # Given the ticketing system and a key reader pointed at a missing secret
    with FakeTicketingSystem(api_key="whatever") as ticketing:
        adapter = HttpTicketingSystem(
            ticketing.url, SecretsManagerApiKey("no/such/secret", client=secretsmanager), sleep=lambda _: None
        )

        # When a decision is pushed / Then the push is reported as retry-later and nothing is sent
        with pytest.raises(SyncUnavailable, match="no API key"):
            adapter.push_routing(a_decision())
        assert ticketing.requests == []


def test_the_key_from_secrets_manager_authorises_the_push(secretsmanager: Any) -> None:
    # Given the key stored as JSON, and a ticketing system that checks it
    secretsmanager.create_secret(Name=SECRET, SecretString='{"api_key": "real-key-0123456789"}')
    with FakeTicketingSystem(api_key="real-key-0123456789") as ticketing:
        adapter = HttpTicketingSystem(ticketing.url, SecretsManagerApiKey(SECRET, client=secretsmanager))

        # When a decision is pushed
        adapter.push_routing(a_decision("T-9"))

        # Then the ticketing system accepted it with the bearer key
        assert "T-9" in ticketing.routing
        assert ticketing.puts[0].header("Authorization") == "Bearer real-key-0123456789"


def test_a_push_after_a_key_rotation_succeeds_with_the_refetched_key(secretsmanager: Any) -> None:
    # Given a cached key, then a rotation that the ticketing system already enforces
    secretsmanager.create_secret(Name=SECRET, SecretString='{"api_key": "key-v1-0123456789"}')
    api_key = SecretsManagerApiKey(SECRET, client=secretsmanager, max_age=300)
    api_key()
    secretsmanager.put_secret_value(SecretId=SECRET, SecretString='{"api_key": "key-v2-0123456789"}')
    with FakeTicketingSystem(api_key="key-v2-0123456789") as ticketing:
        adapter = HttpTicketingSystem(ticketing.url, api_key, refresh_api_key=api_key.refresh, sleep=lambda _: None)

        # When a decision is pushed
        adapter.push_routing(a_decision("T-9"))

        # Then the stale key's 401 led to one retry with the rotated key, which was applied
        assert "T-9" in ticketing.routing
        assert [p.header("Authorization") for p in ticketing.puts] == [
            "Bearer key-v1-0123456789",
            "Bearer key-v2-0123456789",
        ]


@pytest.mark.parametrize(
    "secret_string",
    ['{"token": "s3cr3t-key\\r\\n0123456789"}', "s3cr3t-key-0123456789€"],
    ids=["line-break", "non-ascii"],
)
def test_a_key_no_header_can_carry_is_refused_without_quoting_it(secretsmanager: Any, secret_string: str) -> None:
    # Given a secret whose key cannot be sent in an Authorization header
    secretsmanager.create_secret(Name=SECRET, SecretString=secret_string)
    with FakeTicketingSystem(api_key="whatever") as ticketing:
        adapter = HttpTicketingSystem(
            ticketing.url, SecretsManagerApiKey(SECRET, client=secretsmanager), sleep=lambda _: None
        )

        # When a decision is pushed
        with pytest.raises(SyncUnavailable) as raised:
            adapter.push_routing(a_decision())

    # Then the push is retry-later, naming the secret, and the error (which becomes the decision's
    # sync_error and a log line) does not hold the key
    assert "ticketing/api-key holds an API key with control or non-ASCII characters" in str(raised.value)
    assert "s3cr3t" not in repr(raised.value) and "s3cr3t" not in str(raised.value)
    assert ticketing.requests == []
