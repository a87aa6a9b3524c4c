"""A read-through DynamoDB cache in front of the customer DB.

Table: partition key `customer_id` (S); `expires_at` (N, epoch seconds) is both our freshness
check and the table's TTL attribute; `profile` (S) holds the profile as JSON.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from adapters.aws.client_config import aws_client_config
from adapters.clock import SystemClock
from domain.models import CustomerProfile
from domain.ports import Clock, CustomerDirectory

logger = logging.getLogger(__name__)


class DynamoDBCachedCustomerDirectory:
    """CustomerDirectory that answers from the cache while fresh and from `upstream` otherwise.

    The cache only ever saves latency: any cache failure falls through to the upstream directory,
    and an upstream EvidenceUnavailable propagates unchanged (a stale profile is not served, as a
    changed VIP flag or account type would silently skew the priority).
    """

    def __init__(
        self,
        table_name: str,
        upstream: CustomerDirectory,
        *,
        ttl_seconds: int = 900,
        clock: Clock | None = None,
        client: Any = None,
    ) -> None:
        self.table_name = table_name
        self.upstream = upstream
        self.ttl_seconds = ttl_seconds
        self.clock = clock or SystemClock()
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb", config=aws_client_config())
        return self._client

    def get_profile(self, customer_id: str) -> CustomerProfile:
        now = int(self.clock.now().timestamp())
        cached = self._read(customer_id, now)
        if cached is not None:
            return cached
        profile = self.upstream.get_profile(customer_id)
        self._write(profile, customer_id, now)
        return profile

    def _read(self, customer_id: str, now: int) -> CustomerProfile | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name,
                Key={"customer_id": {"S": customer_id}},
                ProjectionExpression="#profile, expires_at",
                ExpressionAttributeNames={"#profile": "profile"},
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("customer cache read failed, asking the customer DB: %s", exc)
            return None
        item = response.get("Item")
        if not item:
            return None
        try:
            # DynamoDB deletes expired items lazily (up to days later), so freshness is ours to check.
            if int(item["expires_at"]["N"]) <= now:
                return None
            return CustomerProfile.model_validate_json(item["profile"]["S"])
        except (KeyError, ValueError, ValidationError) as exc:
            logger.warning("unreadable customer cache entry for %s ignored: %s", customer_id, exc)
            return None

    def _write(self, profile: CustomerProfile, customer_id: str, now: int) -> None:
        if self.ttl_seconds <= 0:
            return
        if profile == CustomerProfile.unknown(customer_id):
            # A customer created moments ago must not be routed as unknown for a whole TTL.
            return
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "customer_id": {"S": customer_id},
                    "profile": {"S": profile.model_dump_json()},
                    "expires_at": {"N": str(now + self.ttl_seconds)},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("customer cache write failed (the lookup still succeeded): %s", exc)
