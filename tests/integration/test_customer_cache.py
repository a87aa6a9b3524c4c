"""DynamoDBCachedCustomerDirectory in front of the real HTTP customer-DB adapter and fake server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from adapters.aws.customer_cache import DynamoDBCachedCustomerDirectory
from adapters.http.customer_db import HttpCustomerDirectory
from domain.errors import EvidenceUnavailable
from domain.models import AccountType, CustomerProfile
from tests.http_servers import FakeCustomerDb
from tests.integration.conftest import NOW, REGION

VIP = {
    "customer_id": "CUST-1001",
    "is_vip": True,
    "account_type": "Enterprise",
    "lifetime_value": 250000,
    "services": ["SVC001", "SVC002"],
}


class SteppingClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def customer_db() -> Iterator[FakeCustomerDb]:
    with FakeCustomerDb([VIP]) as server:
        yield server


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


def cached_directory(
    table: str, server: FakeCustomerDb, clock: SteppingClock, client: Any, **kwargs: Any
) -> DynamoDBCachedCustomerDirectory:
    upstream = HttpCustomerDirectory(server.url, timeout=1.0)
    return DynamoDBCachedCustomerDirectory(table, upstream, clock=clock, client=client, **kwargs)


def cache_entry(dynamodb: Any, table: str, customer_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamodb.get_item(TableName=table, Key={"customer_id": {"S": customer_id}}).get(
        "Item"
    )
    return item


def test_a_miss_asks_the_customer_db_once_and_later_lookups_are_served_from_the_cache(
    dynamodb: Any, customer_cache_table: str, customer_db: FakeCustomerDb, clock: SteppingClock
) -> None:
    # Given an empty cache in front of the customer DB
    directory = cached_directory(customer_cache_table, customer_db, clock, dynamodb, ttl_seconds=900)

    # When the same customer is looked up three times within the TTL
    first = directory.get_profile("CUST-1001")
    clock.advance(seconds=899)
    second = directory.get_profile("CUST-1001")
    third = directory.get_profile("CUST-1001")

    # Then the customer DB was asked only once and every answer is the same profile
    assert customer_db.lookups_of("CUST-1001") == 1
    assert first == second == third
    assert first.is_vip
    assert first.account_type is AccountType.ENTERPRISE
    # And the cache entry expires (and is TTL-deleted) ttl_seconds after the first lookup
    entry = cache_entry(dynamodb, customer_cache_table, "CUST-1001")
    assert entry is not None
    assert int(entry["expires_at"]["N"]) == int(NOW.timestamp()) + 900


def test_an_expired_entry_is_refreshed_from_the_customer_db(
    dynamodb: Any, customer_cache_table: str, customer_db: FakeCustomerDb, clock: SteppingClock
) -> None:
    # Given a cached profile
    directory = cached_directory(customer_cache_table, customer_db, clock, dynamodb, ttl_seconds=60)
    directory.get_profile("CUST-1001")

    # When the customer changes upstream and the entry expires (DynamoDB may not have deleted it yet)
    customer_db.customers["CUST-1001"] = {**VIP, "is_vip": False}
    clock.advance(seconds=60)
    refreshed = directory.get_profile("CUST-1001")

    # Then the new profile is served and written back with a new expiry
    assert refreshed.is_vip is False
    assert customer_db.lookups_of("CUST-1001") == 2
    entry = cache_entry(dynamodb, customer_cache_table, "CUST-1001")
    assert entry is not None
    assert int(entry["expires_at"]["N"]) == int(NOW.timestamp()) + 120
    assert CustomerProfile.model_validate_json(entry["profile"]["S"]) == refreshed


def test_unknown_customers_are_not_cached(
    dynamodb: Any, customer_cache_table: str, customer_db: FakeCustomerDb, clock: SteppingClock
) -> None:
    # Given a customer the DB does not know yet
    directory = cached_directory(customer_cache_table, customer_db, clock, dynamodb)
    assert directory.get_profile("CUST-NEW") == CustomerProfile.unknown("CUST-NEW")

    # When the customer is created and looked up again
    customer_db.customers["CUST-NEW"] = {"customer_id": "CUST-NEW", "is_vip": True}
    again = directory.get_profile("CUST-NEW")

    # Then the new profile is seen at once instead of an "unknown" cached for the whole TTL
    assert again.is_vip
    assert customer_db.lookups_of("CUST-NEW") == 2


def test_a_missing_cache_table_degrades_to_the_customer_db(
    dynamodb: Any, customer_db: FakeCustomerDb, clock: SteppingClock
) -> None:
    # Given a cache table that does not exist
    directory = cached_directory("no-such-table", customer_db, clock, dynamodb)

    # When a customer is looked up twice
    profiles = [directory.get_profile("CUST-1001"), directory.get_profile("CUST-1001")]

    # Then both lookups succeed straight from the customer DB
    assert all(p.is_vip for p in profiles)
    assert customer_db.lookups_of("CUST-1001") == 2


def test_a_throttled_cache_degrades_to_the_customer_db(customer_db: FakeCustomerDb, clock: SteppingClock) -> None:
    # Given a cache whose reads and writes are throttled
    client = boto3.client("dynamodb", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("get_item", service_error_code="ProvisionedThroughputExceededException")
    stubber.add_client_error("put_item", service_error_code="ThrottlingException")
    directory = cached_directory("customer-cache", customer_db, clock, client)

    # When a customer is looked up
    with stubber:
        profile = directory.get_profile("CUST-1001")

    # Then the lookup succeeds from the customer DB, and both cache calls were attempted
    assert profile.is_vip
    assert customer_db.lookups_of("CUST-1001") == 1
    stubber.assert_no_pending_responses()


def test_an_unreadable_cache_entry_is_replaced_from_the_customer_db(
    dynamodb: Any, customer_cache_table: str, customer_db: FakeCustomerDb, clock: SteppingClock
) -> None:
    # Given a corrupt entry that is not yet expired
    dynamodb.put_item(
        TableName=customer_cache_table,
        Item={
            "customer_id": {"S": "CUST-1001"},
            "profile": {"S": "{not json"},
            "expires_at": {"N": str(int(NOW.timestamp()) + 600)},
        },
    )
    directory = cached_directory(customer_cache_table, customer_db, clock, dynamodb)

    # When the customer is looked up
    profile = directory.get_profile("CUST-1001")

    # Then the DB answers and the entry is repaired
    assert profile.is_vip
    entry = cache_entry(dynamodb, customer_cache_table, "CUST-1001")
    assert entry is not None
    assert CustomerProfile.model_validate_json(entry["profile"]["S"]) == profile


def test_an_unreachable_customer_db_on_a_miss_raises_evidence_unavailable(
    dynamodb: Any, customer_cache_table: str, customer_db: FakeCustomerDb, clock: SteppingClock
) -> None:
    # Given an empty cache and a customer DB that only answers 503
    customer_db.fail_next(None, status=503)
    directory = cached_directory(customer_cache_table, customer_db, clock, dynamodb)

    # When / Then the lookup fails with the domain error and nothing is cached
    with pytest.raises(EvidenceUnavailable):
        directory.get_profile("CUST-1001")
    assert cache_entry(dynamodb, customer_cache_table, "CUST-1001") is None


def test_a_fresh_entry_is_served_even_while_the_customer_db_is_down(
    dynamodb: Any, customer_cache_table: str, customer_db: FakeCustomerDb, clock: SteppingClock
) -> None:
    # Given a cached profile
    directory = cached_directory(customer_cache_table, customer_db, clock, dynamodb)
    directory.get_profile("CUST-1001")

    # When the customer DB goes down
    customer_db.fail_next(None, status=500)
    profile = directory.get_profile("CUST-1001")

    # Then the cache still answers
    assert profile.is_vip
    assert customer_db.lookups_of("CUST-1001") == 1
