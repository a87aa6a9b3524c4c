"""Create the app's AWS resources in moto exactly as the SAM template declares them, and read
DynamoDB stream records back as Lambda would receive them.

Shared by the integration tests, the e2e tests and the benchmarks; call inside `mock_aws()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TICKET_RECEIVED_PATTERN = {"source": ["support.ticketing"], "detail-type": ["TicketReceived"]}


def _key(name: str, key_type: str) -> dict[str, str]:
    return {"AttributeName": name, "KeyType": key_type}


def _timestamp_index(partition: str) -> dict[str, Any]:
    return {
        "IndexName": f"{partition}-timestamp-index",
        "KeySchema": [_key(partition, "HASH"), _key("timestamp", "RANGE")],
        "Projection": {"ProjectionType": "ALL"},
    }


def create_decisions_table(client: Any, name: str) -> dict[str, Any]:
    """The routing decisions table; returns its description (LatestStreamArn included)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[_key("ticket_id", "HASH"), _key("timestamp", "RANGE")],
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "N" if attribute == "timestamp" else "S"}
            for attribute in ("ticket_id", "timestamp", "customer_id", "assigned_team", "sync_status")
        ],
        GlobalSecondaryIndexes=[
            *(_timestamp_index(p) for p in ("customer_id", "assigned_team", "sync_status")),
            {
                "IndexName": "sync_status-unsynced-index",
                "KeySchema": [_key("sync_status", "HASH"), _key("timestamp", "RANGE")],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["created_at", "sync_attempted_at"]},
            },
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    return dict(client.describe_table(TableName=name)["Table"])


def create_customer_cache_table(client: Any, name: str) -> dict[str, Any]:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[_key("customer_id", "HASH")],
        AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"}],
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    return dict(client.describe_table(TableName=name)["Table"])


def create_idempotency_table(client: Any, name: str) -> dict[str, Any]:
    """Powertools' default idempotency schema: partition key `id`, TTL on `expiration`."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[_key("id", "HASH")],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
    return dict(client.describe_table(TableName=name)["Table"])


def create_bus_with_queue_target(events_client: Any, sqs_client: Any, bus_name: str) -> str:
    """A custom bus whose TicketReceived rule delivers to an SQS queue; returns the queue URL.

    The queue stands in for the orchestrator so tests can read exactly what the bus delivered.
    """
    events_client.create_event_bus(Name=bus_name)
    queue_url: str = sqs_client.create_queue(QueueName=f"{bus_name}-ticket-received")["QueueUrl"]
    queue_arn = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_name = f"{bus_name}-ticket-received"
    rule_arn = events_client.put_rule(
        Name=rule_name, EventBusName=bus_name, EventPattern=json.dumps(TICKET_RECEIVED_PATTERN), State="ENABLED"
    )["RuleArn"]
    sqs_client.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                        }
                    ],
                }
            )
        },
    )
    events_client.put_targets(Rule=rule_name, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


def receive_events(sqs_client: Any, queue_url: str, *, max_messages: int = 10) -> list[dict[str, Any]]:
    """The EventBridge envelopes (source, detail-type, detail...) waiting in a target queue."""
    response = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=0)
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


def _lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams API record reshaped into a Lambda event record.

    The Streams API (via boto3) gives ApproximateCreationDateTime as a datetime; Lambda delivers
    epoch seconds, and adds eventSourceARN.
    """
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


class StreamTail:
    """Follows a table's stream: each poll() returns only the records written since the last one."""

    def __init__(self, dynamodb_client: Any, streams_client: Any, table_name: str) -> None:
        self.streams = streams_client
        self.stream_arn: str = dynamodb_client.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self._iterators: dict[str, str] = {}

    def poll(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = (
                self._iterators.get(shard_id)
                or self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator)
                next_iterator = page.get("NextShardIterator")
                if next_iterator:
                    self._iterators[shard_id] = next_iterator
                records.extend(_lambda_record(r, self.stream_arn) for r in page.get("Records", []))
                # An open shard always hands back a next iterator; an empty page means caught up.
                if not page.get("Records"):
                    break
                iterator = next_iterator
        return records


def read_stream_records(dynamodb_client: Any, streams_client: Any, table_name: str) -> list[dict[str, Any]]:
    """Every record in the table's stream so far, oldest first, as Lambda event records."""
    return StreamTail(dynamodb_client, streams_client, table_name).poll()


def stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A DynamoDB Streams Lambda event for the given records."""
    return {"Records": records}


@dataclass(frozen=True)
class StackResources:
    """The stack's AWS resources as the SAM template declares them, created in moto."""

    bus: str = "support-tickets"
    decisions_table: str = "routing-decisions"
    cache_table: str = "customer-cache"
    idempotency_table: str = "ingestion-idempotency"
    secret: str = "ticketing/api-key"

    def create(self, region: str, api_key: str) -> tuple[Any, Any, str]:
        """Tables, bus (with an SQS target) and the ticketing secret; returns (dynamodb, sqs, queue_url)."""
        import boto3

        dynamodb = boto3.client("dynamodb", region_name=region)
        create_decisions_table(dynamodb, self.decisions_table)
        create_customer_cache_table(dynamodb, self.cache_table)
        create_idempotency_table(dynamodb, self.idempotency_table)
        sqs = boto3.client("sqs", region_name=region)
        queue_url = create_bus_with_queue_target(boto3.client("events", region_name=region), sqs, self.bus)
        boto3.client("secretsmanager", region_name=region).create_secret(
            Name=self.secret, SecretString=json.dumps({"api_key": api_key})
        )
        return dynamodb, sqs, queue_url

    def environment(
        self, *, customer_db: str, service_status: str, ticketing: str, retry_delay_base: str
    ) -> dict[str, str]:
        """What the three functions' settings read, pointed at these resources and HTTP services."""
        return {
            "EVENTBRIDGE_BUS_NAME": self.bus,
            "CUSTOMER_DB_ENDPOINT": customer_db,
            "SERVICE_STATUS_ENDPOINT": service_status,
            "ROUTING_DECISIONS_TABLE": self.decisions_table,
            "CUSTOMER_CACHE_TABLE": self.cache_table,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "TICKETING_SYSTEM_ENDPOINT": ticketing,
            "TICKETING_SYSTEM_API_KEY_SECRET": self.secret,
            "ROUTING_ENGINE": "pipeline",
            "MAX_RETRIES": "2",
            "RETRY_DELAY_BASE": retry_delay_base,
            "POWERTOOLS_METRICS_NAMESPACE": "TicketRouting",
        }
