"""The three Lambdas chained in-process over moto, under injected ticketing faults and duplicate deliveries.

API event -> ingestion -> EventBridge (rule -> SQS) -> orchestrator -> DynamoDB stream (filtered as the
template's FilterCriteria filters it) -> ticketing update (batches of 10) -> the ticketing system's REST API.
AWS is moto; the customer DB, the service status API and the ticketing system are real HTTP servers on
127.0.0.1, wired by the real AWS composition root.

Reports warm latency per invocation of each handler against the cost of validating the same ticket
(so the ratio survives a noisy machine), then reconciles: every accepted ticket has exactly one
decision, which is either synced or visibly failed; nothing is lost, no duplicate delivery makes a
second decision or a second successful PUT; a replay after the faults clear syncs every failed one.

    .venv/bin/python -m bench.aws_flow [COUNT] [FAULT_RATE]
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from bench.common import EVAL_CUSTOMERS, EVAL_SERVICES, percentile, ticket_stream
from domain.models import NewTicket, SyncStatus
from domain.recovery import replay_failed_syncs
from handlers.observability import logs_to
from tests.http_servers import (
    FakeTicketingSystem,
    Fault,
    RecordedRequest,
    Reply,
)
from tests.in_process_stack import STACK, InProcessStack, in_process_stack

REGION = "us-east-1"
DECISIONS_TABLE = STACK.decisions_table
API_KEY = "tk-bench-0123456789abcdef"

STREAM_BATCH_SIZE = 10  # the template's BatchSize
CHUNK = 50  # tickets posted before the queue and the stream are drained: a few batches in flight at a time
DUPLICATE_EVERY = 20  # every 20th EventBridge event and stream batch is delivered twice: 5 %
FAULT_KINDS = ("503-once", "429-retry-after-0", "503-permanent")

_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
# Anything that could point boto3 at a real account or endpoint, or make the handlers build their own
# deps at import (AWS_LAMBDA_FUNCTION_NAME), is removed for the run.
_REMOVED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_LAMBDA_FUNCTION_NAME")


class _Environment:
    """os.environ changes that are all undone on exit, whatever was set before."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, name: str, value: str | None) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()


@contextlib.contextmanager
def _fake_aws_environment() -> Iterator[_Environment]:
    env = _Environment()
    previous_session = boto3.DEFAULT_SESSION
    with tempfile.TemporaryDirectory(prefix="bench-aws-") as tmp:
        empty = Path(tmp) / "aws-config"
        empty.write_text("")
        try:
            for name in [*_REMOVED_ENV, *(n for n in os.environ if n.startswith("AWS_ENDPOINT_URL"))]:
                env.set(name, None)
            for name, value in _FAKE_AWS_ENV.items():
                env.set(name, value)
            # An empty config keeps a developer's ~/.aws (retries, endpoints, credentials) out of the run.
            env.set("AWS_CONFIG_FILE", str(empty))
            env.set("AWS_SHARED_CREDENTIALS_FILE", str(empty))
            boto3.DEFAULT_SESSION = None  # a session made before would keep the old config
            yield env
        finally:
            env.restore()
            boto3.DEFAULT_SESSION = previous_session


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


class FaultyTicketingSystem(FakeTicketingSystem):
    """The fake ticketing API with faults planned per ticket rather than per request in arrival order,
    so that a ticket keeps failing (or recovers) whatever else is pushed around it."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key=api_key)
        self.planned: dict[str, Fault] = {}
        self.reapplied_keys: list[str] = []  # successful PUTs of a key the API had already applied

    def plan(self, ticket_id: str, fault: Fault) -> None:
        with self._lock:
            self.planned[ticket_id] = fault

    def clear_faults(self) -> None:
        super().clear_faults()
        with self._lock:
            self.planned.clear()

    def _serve(self, request: RecordedRequest) -> Reply | None:
        ticket_id = _routing_ticket(request.path)
        if ticket_id is None:
            return super()._serve(request)
        with self._lock:
            fault = self.planned.get(ticket_id)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.planned[ticket_id]
        if fault is None or fault.reply is None:
            return super()._serve(request)
        with self._lock:
            self.requests.append(request)
        return fault.reply

    def respond(self, request: RecordedRequest) -> Reply:
        reply = super().respond(request)
        if reply.status == 200 and json.loads(reply.body).get("status") == "already applied":
            with self._lock:
                self.reapplied_keys.append(request.header("Idempotency-Key") or "")
        return reply


def _routing_ticket(path: str) -> str | None:
    parts = [p for p in path.split("?", maxsplit=1)[0].split("/") if p]
    return parts[1] if len(parts) == 3 and parts[0] == "tickets" and parts[2] == "routing" else None


def _fault(kind: str) -> Fault:
    if kind == "503-once":
        return Fault(Reply.json({"error": "unavailable"}, 503), times=1)
    if kind == "429-retry-after-0":
        return Fault(Reply.json({"error": "slow down"}, 429, {"Retry-After": "0"}), times=1)
    if kind == "503-permanent":  # until the faults are cleared: every retry is spent
        return Fault(Reply.json({"error": "unavailable"}, 503), times=None)
    raise ValueError(kind)


def plan_faults(ticket_ids: list[str], fault_rate: float, rng: random.Random) -> dict[str, str]:
    """A fault for round(fault_rate * tickets) tickets, the three kinds in equal shares."""
    chosen = rng.sample(ticket_ids, min(len(ticket_ids), round(len(ticket_ids) * fault_rate)))
    kinds = [FAULT_KINDS[i % len(FAULT_KINDS)] for i in range(len(chosen))]
    rng.shuffle(kinds)
    return dict(zip(chosen, kinds, strict=True))


def _passes_filter_criteria(record: dict[str, Any]) -> bool:
    """The template's FilterCriteria: only INSERTs of pending decisions reach the function."""
    image = record.get("dynamodb", {}).get("NewImage") or {}
    return record.get("eventName") == "INSERT" and image.get("sync_status") == {"S": SyncStatus.PENDING.value}


Stack = InProcessStack[FaultyTicketingSystem]


def _stored_statuses(stack: Stack) -> list[tuple[str, str]]:
    """(ticket_id, sync_status) of every item in the decisions table: a full scan, following pages.

    Projected to the two attributes: moto takes milliseconds to serialise each full decision.
    """
    rows: list[tuple[str, str]] = []
    for page in stack.dynamodb.get_paginator("scan").paginate(
        TableName=DECISIONS_TABLE, ProjectionExpression="ticket_id, sync_status"
    ):
        # A synced decision has no sync_status: the attribute is removed to keep it out of the index.
        rows.extend(
            (item["ticket_id"]["S"], item.get("sync_status", {"S": SyncStatus.SUCCESS.value})["S"])
            for item in page["Items"]
        )
    return rows


def _ids_with_status(stack: Stack, status: SyncStatus, limit: int) -> set[str]:
    """Through the sync_status-unsynced-index, as an operator (or the DLQ replay) finds them."""
    repository = stack.ticketing_update.repository
    assert repository is not None
    return {decision.ticket_id for decision in repository.find_by_sync_status(status, limit=limit)}


def _stats(latencies: list[float]) -> dict[str, Any]:
    warm = latencies[1:]  # the first invocation of each function is its cold one
    return {
        "p50_ms": round(percentile(warm, 50), 3),
        "p95_ms": round(percentile(warm, 95), 3),
        "p99_ms": round(percentile(warm, 99), 3),
        "invocations": len(latencies),
    }


def baseline_validate_us(rows: list[dict[str, Any]], repeats: int = 5) -> float:
    """Best of `repeats` passes: µs to validate one ticket dict with NewTicket."""
    NewTicket.model_validate(rows[0])  # the deferred schema is built on first use
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for row in rows:
            NewTicket.model_validate(row)
        best = min(best, time.perf_counter() - started)
    return best / len(rows) * 1e6


@contextlib.contextmanager
def _stack(env: _Environment) -> Iterator[Stack]:
    with in_process_stack(
        FaultyTicketingSystem(api_key=API_KEY),
        customers=json.loads(EVAL_CUSTOMERS.read_text()),
        outages=json.loads(EVAL_SERVICES.read_text())["outages"],
        set_env=env.set,
        region=REGION,
        api_key=API_KEY,
        retry_delay_base="0.001",
    ) as stack:
        yield stack


def run(count: int = 500, fault_rate: float = 0.2, seed: int = 7) -> dict[str, Any]:
    started = time.perf_counter()
    rng = random.Random(seed)
    tickets = ticket_stream(count)
    ids = [t["ticket_id"] for t in tickets]
    faults = plan_faults(ids, fault_rate, rng)
    with _fake_aws_environment() as env, mock_aws(), logs_to(_Discard()), _stack(env) as stack:
        for ticket_id, kind in faults.items():
            stack.ticketing_api.plan(ticket_id, _fault(kind))

        accepted: set[str] = set()
        rejected_posts: list[tuple[str, int]] = []
        events_seen = batches_seen = 0
        duplicate_events = duplicate_batches = 0
        second_decisions = 0  # a duplicate event that created a decision anyway
        filtered_out = 0  # stream records the template's FilterCriteria keeps from the function (its own MODIFYs)
        reported_failures: set[str] = set()  # sequence numbers in batchItemFailures
        ticket_of_sequence: dict[str, str] = {}

        for offset in range(0, count, CHUNK):
            for ticket in tickets[offset : offset + CHUNK]:
                status, body = stack.post(ticket)
                if status == 202:
                    accepted.add(body["ticket_id"])
                else:
                    rejected_posts.append((ticket["ticket_id"], status))

            for event in stack.delivered_events():
                stack.route(event)
                if events_seen % DUPLICATE_EVERY == 0:  # EventBridge delivers at least once
                    duplicate_events += 1
                    second_decisions += bool(stack.route(copy.deepcopy(event))["created"])
                events_seen += 1

            records = stack.stream.poll()
            deliverable = [r for r in records if _passes_filter_criteria(r)]
            filtered_out += len(records) - len(deliverable)
            for record in deliverable:
                ticket_of_sequence[record["dynamodb"]["SequenceNumber"]] = record["dynamodb"]["Keys"]["ticket_id"]["S"]
            for i in range(0, len(deliverable), STREAM_BATCH_SIZE):
                batch = deliverable[i : i + STREAM_BATCH_SIZE]
                deliveries = 2 if batches_seen % DUPLICATE_EVERY == 0 else 1
                duplicate_batches += deliveries - 1
                for delivery in range(deliveries):
                    result = stack.sync(copy.deepcopy(batch) if delivery else batch)
                    for failure in result["batchItemFailures"]:
                        reported_failures.add(failure["itemIdentifier"])
                batches_seen += 1

        # Reconcile: one decision per accepted ticket, each either synced or findable as failed.
        limit = count * 2 + 10
        rows = _stored_statuses(stack)
        stored = [ticket_id for ticket_id, _ in rows]
        synced = {ticket_id for ticket_id, status in rows if status == SyncStatus.SUCCESS.value}
        failed = _ids_with_status(stack, SyncStatus.FAILED, limit)
        pending = _ids_with_status(stack, SyncStatus.PENDING, limit)
        lost = accepted - synced - failed
        applied = list(stack.ticketing_api.applied_keys)
        applied_tickets = {key.split(":", 1)[0] for key in applied}
        permanent = {t for t, kind in faults.items() if kind == "503-permanent"}
        reported_tickets = {ticket_of_sequence[s] for s in reported_failures}

        # Then the ticketing system recovers and the failed syncs are replayed.
        stack.ticketing_api.clear_faults()
        deps = stack.ticketing_update
        report = replay_failed_syncs(
            repository=deps.repository, ticketing=deps.ticketing, clock=deps.clock, limit=limit
        )
        synced_after = {t for t, status in _stored_statuses(stack) if status == SyncStatus.SUCCESS.value}
        failed_after = _ids_with_status(stack, SyncStatus.FAILED, limit)
        applied_after = stack.ticketing_api.applied_keys
        duplicate_puts = len(stack.ticketing_api.reapplied_keys) + len(applied_after) - len(set(applied_after))

        reconciliation = {
            "accepted": len(accepted),
            "decisions_stored": len(set(stored)),
            "synced": len(synced),
            "failed_visible": len(failed),
            "pending": len(pending),
            "lost": len(lost),
            "duplicate_decisions": len(stored) - len(set(stored)) + second_decisions,
            "duplicate_puts": duplicate_puts,
            "distinct_applied_keys": len(set(applied)),
            "failed_are_the_permanent_faults": failed == permanent,
            "failed_reported_to_event_source": reported_tickets == failed,
            "replayed_ok": len(report.succeeded),
            "synced_after_replay": len(synced_after),
            "distinct_applied_keys_after_replay": len(set(applied_after)),
        }
        reconciliation["reconciled"] = (
            len(accepted) == count
            and not rejected_posts
            and len(accepted) == len(set(stored)) == len(synced) + len(failed)
            and not synced & failed
            and not pending
            and not lost
            and reconciliation["duplicate_decisions"] == 0
            and duplicate_puts == 0
            and applied_tickets == synced  # one applied key per synced ticket, none for a failed one
            and len(set(applied)) == len(synced)
            and failed == permanent
            and reported_tickets == failed
            and len(report.succeeded) == len(failed)
            and synced_after == accepted
            and not failed_after
            and len(set(applied_after)) == len(accepted)
        )
        puts = len(stack.ticketing_api.puts)
        latencies = stack.latencies

    baseline = baseline_validate_us(tickets)
    handlers = {name: _stats(values) for name, values in latencies.items()}
    return {
        "tickets": count,
        "fault_rate": fault_rate,
        "faults_planned": {kind: sum(1 for k in faults.values() if k == kind) for kind in FAULT_KINDS},
        "duplicates_delivered": {"eventbridge_events": duplicate_events, "stream_batches": duplicate_batches},
        "stream_records_filtered_out": filtered_out,
        "ticketing_puts": puts,
        "handlers": handlers,
        "baseline_validate_us": round(baseline, 2),
        "ratios": {name: round(stats["p50_ms"] * 1000 / baseline, 1) for name, stats in handlers.items()},
        "reconciliation": reconciliation,
        "seconds": round(time.perf_counter() - started, 2),
    }


if __name__ == "__main__":
    import sys

    arguments = sys.argv[1:]
    result = run(
        count=int(arguments[0]) if arguments else 500,
        fault_rate=float(arguments[1]) if len(arguments) > 1 else 0.2,
    )
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["reconciliation"]["reconciled"] else 1)
