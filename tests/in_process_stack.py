"""The deployed system, in-process: the three Lambda handlers wired by the real AWS composition root,
over moto's AWS and real HTTP servers on 127.0.0.1 for the customer DB, the service status API and the
ticketing system.

Shared by the e2e tests and `bench.aws_flow`; enter `in_process_stack` inside `mock_aws()`.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import boto3

from handlers import ingestion, orchestrator, ticketing_update
from handlers.bootstrap import (
    IngestionDeps,
    OrchestratorDeps,
    TicketingUpdateDeps,
    build_ingestion_deps,
    build_orchestrator_deps,
    build_ticketing_update_deps,
)
from handlers.local_context import LocalLambdaContext
from tests.aws_resources import StackResources, StreamTail, stream_event
from tests.http_servers import FakeCustomerDb, FakeServiceStatusApi, FakeTicketingSystem

ROOT = Path(__file__).parents[1]
POST_EVENT: dict[str, Any] = json.loads((ROOT / "events" / "api_post_ticket.json").read_text())
STACK = StackResources()

TicketingApi = TypeVar("TicketingApi", bound=FakeTicketingSystem)


@dataclass
class InProcessStack(Generic[TicketingApi]):
    ingestion: IngestionDeps
    orchestrator: OrchestratorDeps
    ticketing_update: TicketingUpdateDeps
    ticketing_api: TicketingApi
    customer_db: FakeCustomerDb
    dynamodb: Any
    sqs: Any
    queue_url: str
    stream: StreamTail
    # Milliseconds per invocation of each function, in order: the first is its cold one.
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"ingestion": [], "orchestrator": [], "ticketing_update": []}
    )

    def post(self, ticket: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        event = copy.deepcopy(POST_EVENT)
        event["body"] = json.dumps(ticket)
        result = self._invoke("ingestion", ingestion.lambda_handler, event, self.ingestion)
        return int(result["statusCode"]), json.loads(result["body"])

    def get(self, ticket_id: str) -> tuple[int, dict[str, Any]]:
        event = copy.deepcopy(POST_EVENT)
        event.update({"httpMethod": "GET", "path": f"/tickets/{ticket_id}", "body": None, "headers": {}})
        event.update({"resource": "/tickets/{ticket_id}", "multiValueHeaders": {}})
        result = self._invoke("ingestion", ingestion.lambda_handler, event, self.ingestion)
        return int(result["statusCode"]), json.loads(result["body"])

    def delivered_events(self) -> list[dict[str, Any]]:
        """Everything the TicketReceived rule put on its target queue, consumed (received and deleted)."""
        events: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return events
            events.extend(json.loads(m["Body"]) for m in messages)
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def route(self, event: dict[str, Any]) -> dict[str, Any]:
        return self._invoke("orchestrator", orchestrator.lambda_handler, event, self.orchestrator)

    def sync(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self._invoke(
            "ticketing_update", ticketing_update.lambda_handler, stream_event(records), self.ticketing_update
        )

    def puts_for(self, ticket_id: str) -> list[Any]:
        return [r for r in self.ticketing_api.puts if r.path == f"/tickets/{ticket_id}/routing"]

    def _invoke(
        self, function: str, handler: Callable[..., dict[str, Any]], event: dict[str, Any], deps: Any
    ) -> dict[str, Any]:
        context = LocalLambdaContext(function_name=function.replace("_", "-"))
        started = time.perf_counter()
        result = handler(event, context, deps=deps)
        self.latencies[function].append((time.perf_counter() - started) * 1000)
        return result


@contextmanager
def in_process_stack(
    ticketing_api: TicketingApi,
    *,
    customers: Iterable[Mapping[str, Any]],
    outages: Iterable[Mapping[str, Any]],
    set_env: Callable[[str, str], None],
    region: str,
    api_key: str,
    retry_delay_base: str,
) -> Iterator[InProcessStack[TicketingApi]]:
    """The stack's AWS resources as the SAM template declares them, the three HTTP services (the
    ticketing API is the caller's, so it can plan faults), and the environment the functions'
    settings read, set through `set_env` so that the caller decides how it is undone."""
    dynamodb, sqs, queue_url = STACK.create(region, api_key)
    with (
        FakeCustomerDb(customers) as customer_db,
        FakeServiceStatusApi(outages) as status_api,
        ticketing_api,
    ):
        for name, value in STACK.environment(
            customer_db=customer_db.url,
            service_status=status_api.url,
            ticketing=ticketing_api.url,
            retry_delay_base=retry_delay_base,
        ).items():
            set_env(name, value)
        yield InProcessStack(
            ingestion=build_ingestion_deps(),
            orchestrator=build_orchestrator_deps(),
            ticketing_update=build_ticketing_update_deps(),
            ticketing_api=ticketing_api,
            customer_db=customer_db,
            dynamodb=dynamodb,
            sqs=sqs,
            queue_url=queue_url,
            stream=StreamTail(dynamodb, boto3.client("dynamodbstreams", region_name=region), STACK.decisions_table),
        )
