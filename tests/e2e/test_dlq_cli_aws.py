"""`ticket-router dlq replay --aws`: failed updates in the decisions table reach the ticketing API,
and the stream's DLQ is emptied only once nothing is left to do."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from adapters.aws.dynamodb_repository import DynamoDBDecisionRepository
from domain.models import SyncStatus
from handlers.cli import main
from tests.aws_resources import create_decisions_table
from tests.http_servers import FakeTicketingSystem
from tests.integration.conftest import REGION
from tests.integration.test_sqlite_repository import a_decision

API_KEY = "replay-key"


@dataclass
class AwsReplay:
    table: DynamoDBDecisionRepository
    ticketing: FakeTicketingSystem
    sqs: Any
    dlq_url: str

    def failed(self, *ticket_ids: str) -> None:
        for i, ticket_id in enumerate(ticket_ids):
            self.table.save(a_decision(ticket_id, timestamp=i))
            self.table.update_sync_status(ticket_id, i, SyncStatus.FAILED, error="503")

    def rejected(self, *ticket_ids: str) -> None:
        for i, ticket_id in enumerate(ticket_ids, start=100):
            self.table.save(a_decision(ticket_id, timestamp=i))
            self.table.update_sync_status(ticket_id, i, SyncStatus.REJECTED, error="HTTP 422: ticket is closed")

    def dead_letters(self, count: int) -> None:
        for n in range(count):
            self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps({"batch": n}))

    def dead_letters_left(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def replay(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
        code = main(["dlq", "replay", "--aws", "--queue-url", self.dlq_url, *extra])
        captured = capsys.readouterr()
        return code, json.loads(captured.out), captured.err


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsReplay]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_decisions_table(dynamodb, "routing-decisions")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="ticketing/api-key", SecretString=json.dumps({"api_key": API_KEY})
    )
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="ticketing-update-dlq")["QueueUrl"]
    with FakeTicketingSystem(api_key=API_KEY) as ticketing:
        for name, value in {
            "ROUTING_DECISIONS_TABLE": "routing-decisions",
            "TICKETING_SYSTEM_ENDPOINT": ticketing.url,
            "TICKETING_SYSTEM_API_KEY_SECRET": "ticketing/api-key",
            "MAX_RETRIES": "0",
            "RETRY_DELAY_BASE": "0",
        }.items():
            monkeypatch.setenv(name, value)
        yield AwsReplay(DynamoDBDecisionRepository("routing-decisions", client=dynamodb), ticketing, sqs, dlq_url)


def test_replay_pushes_failed_decisions_and_then_empties_the_dlq(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two decisions whose sync failed, and the stream's DLQ holding their batches
    stack.failed("T-1", "T-2")
    stack.dead_letters(2)
    # When the DLQ is replayed
    code, report, _ = stack.replay(capsys)
    # Then both reach the ticketing API and are recorded as synced, and the DLQ is emptied
    assert code == 0
    assert sorted(stack.ticketing.routing) == ["T-1", "T-2"]
    assert stack.table.find_by_sync_status(SyncStatus.FAILED) == []
    assert (report["succeeded"], report["limit_reached"], report["dlq_messages_deleted"]) == (2, False, 2)
    assert stack.dead_letters_left() == 0


def test_a_replay_cut_short_by_the_limit_says_so_and_keeps_the_dlq(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three failed syncs and their dead letters
    stack.failed("T-1", "T-2", "T-3")
    stack.dead_letters(3)
    # When at most two are replayed
    code, report, err = stack.replay(capsys, "--limit", "2")
    # Then two are pushed, the run says work is left with the exit of work undone, and the DLQ is
    # kept for the rest
    assert code == 1
    assert (report["succeeded"], report["limit_reached"], report["dlq_messages_deleted"]) == (2, True, 0)
    assert "--limit 2 reached; run again for the rest" in err
    assert stack.dead_letters_left() == 3
    # And the next run finishes the work and empties the DLQ
    code, report, _ = stack.replay(capsys, "--limit", "2")
    assert (code, report["succeeded"], report["limit_reached"], report["dlq_messages_deleted"]) == (0, 1, False, 3)


def test_a_rejected_update_is_reported_and_is_not_taken_for_work_the_limit_left(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one failed sync that the ticketing API will refuse outright
    stack.failed("T-1")
    stack.ticketing.reject_next(status=422, message="ticket is closed")
    # When exactly one may be replayed
    code, report, _ = stack.replay(capsys, "--limit", "1")
    # Then the refusal is reported as work left for a person, and the run does not claim the limit
    # left work behind
    assert (report["rejected"], report["rejected_ticket_ids"], report["limit_reached"]) == (1, ["T-1"], False)
    assert code == 1


def test_a_rejected_update_keeps_the_dlq(stack: AwsReplay, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a failed sync, its dead letter, and a ticketing API that refuses the update outright
    stack.failed("T-1")
    stack.dead_letters(1)
    stack.ticketing.reject_next(status=422, message="ticket is closed")
    # When the DLQ is replayed
    code, report, _ = stack.replay(capsys)
    # Then the decision is kept, rejected, for a person to look at, and so is its dead letter
    assert (code, report["rejected_ticket_ids"], report["dlq_messages_deleted"]) == (1, ["T-1"], 0)
    assert stack.table.find_by_sync_status(SyncStatus.FAILED) == []
    assert [d.ticket_id for d in stack.table.find_by_sync_status(SyncStatus.REJECTED)] == ["T-1"]
    assert stack.dead_letters_left() == 1


def test_rejected_updates_do_not_crowd_a_transient_failure_out_of_the_limit(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a sync that failed for a moment, its dead letter, and more updates the ticketing API
    # refused, received later, than one replay may push
    stack.failed("T-DOWN")
    stack.dead_letters(1)
    stack.rejected("T-R1", "T-R2", "T-R3")
    # When at most one is replayed
    code, report, err = stack.replay(capsys, "--limit", "1")
    # Then the transient failure is pushed and the DLQ emptied; the refused ones are listed, not retried
    assert sorted(stack.ticketing.routing) == ["T-DOWN"]
    assert (code, report["succeeded"], report["limit_reached"], report["dlq_messages_deleted"]) == (0, 1, False, 1)
    assert report["rejected_not_retried_ticket_ids"] == ["T-R3", "T-R2", "T-R1"]
    assert "3 update(s) the ticketing system rejected earlier were not retried" in err
    assert "--include-rejected" in err
    # And once their cause is fixed, they are pushed when asked for
    code, report, _ = stack.replay(capsys, "--include-rejected")
    assert (code, report["succeeded"], report["rejected_not_retried_ticket_ids"]) == (0, 3, [])
    assert stack.table.find_by_sync_status(SyncStatus.REJECTED) == []


def test_rejected_updates_asked_for_and_left_by_the_limit_are_work_left(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two refused updates
    stack.rejected("T-R1", "T-R2")
    # When at most one is replayed, rejected ones included
    code, report, _ = stack.replay(capsys, "--include-rejected", "--limit", "1")
    # Then the run says the limit left work
    assert (code, report["succeeded"], report["limit_reached"]) == (1, 1, True)


def test_a_ticketing_api_still_down_keeps_the_decisions_failed_and_the_dlq(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed sync, its dead letter, and a ticketing API still down
    stack.failed("T-1")
    stack.dead_letters(1)
    stack.ticketing.fail_next(times=None)
    # When the DLQ is replayed
    code, report, _ = stack.replay(capsys)
    # Then nothing is lost: the decision stays failed and the DLQ keeps its message
    assert code == 1
    assert (report["still_failing_ticket_ids"], report["dlq_messages_deleted"]) == (["T-1"], 0)
    assert [d.ticket_id for d in stack.table.find_by_sync_status(SyncStatus.FAILED)] == ["T-1"]
    assert stack.dead_letters_left() == 1


def test_a_replay_against_a_ticketing_api_that_is_down_stops_early_and_says_what_is_left(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given five failed syncs, their dead letters, and a ticketing API still down
    stack.failed("T-1", "T-2", "T-3", "T-4", "T-5")
    stack.dead_letters(5)
    stack.ticketing.fail_next(times=None)
    # When the DLQ is replayed
    code, report, err = stack.replay(capsys)
    # Then it gives up after three pushes failed in a row rather than trying every one, says so,
    # and keeps every decision failed and the DLQ whole
    assert code == 1
    assert len(stack.ticketing.requests_to("PUT")) == 3
    assert (report["attempted"], report["not_attempted"], report["dlq_messages_deleted"]) == (3, 2, 0)
    assert "3 updates in a row" in report["ticketing_unavailable"]
    assert "error: the ticketing system failed 3 updates in a row" in err
    assert "replayed 3 of 5: 0 synced, 3 still failing, 0 rejected" in err
    assert len(stack.table.find_by_sync_status(SyncStatus.FAILED)) == 5
    assert stack.dead_letters_left() == 5


def test_a_replay_does_not_wait_out_a_retry_after_longer_than_its_pushes_may_take(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a failed sync, and a ticketing API that asks to be retried in four minutes
    monkeypatch.setenv("MAX_RETRIES", "1")
    stack.failed("T-1")
    stack.ticketing.throttle_next(times=None, retry_after="240")
    # When the DLQ is replayed
    code, report, _ = stack.replay(capsys)
    # Then the push gives up at once, as past the time its own retries need, and stays failed
    assert code == 1
    assert len(stack.ticketing.requests_to("PUT")) == 1
    assert report["still_failing_ticket_ids"] == ["T-1"]
    assert "would pass the deadline" in stack.table.get("T-1").sync_error


def test_an_empty_queue_url_is_refused_rather_than_ignored(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed sync and its dead letter, and --queue-url given an unset shell variable
    stack.failed("T-1")
    stack.dead_letters(1)
    # When the replay is asked for
    with pytest.raises(SystemExit) as exc:
        main(["dlq", "replay", "--aws", "--queue-url", ""])
    # Then it is a usage error naming the option, and nothing is replayed or deleted
    assert exc.value.code == 2
    assert "argument --queue-url" in capsys.readouterr().err
    assert stack.ticketing.routing == {}
    assert stack.dead_letters_left() == 1


def test_a_dlq_that_cannot_be_emptied_is_an_error_after_the_report(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a decision whose sync failed, and a --queue-url naming no queue (a typo)
    stack.failed("T-1")
    stack.dlq_url = f"https://sqs.{REGION}.amazonaws.com/123456789012/no-such-dlq"
    # When the failed updates are replayed
    code, report, err = stack.replay(capsys)
    # Then the push is made and reported, and the queue is named as the problem, without a trace
    assert code == 1
    assert (report["attempted"], report["succeeded"], sorted(stack.ticketing.routing)) == (1, 1, ["T-1"])
    assert stack.dlq_url in report["dlq_error"]
    assert f"ticket-router: error: cannot empty the DLQ {stack.dlq_url}" in err
    assert "Traceback" not in err and "internal error" not in err


def test_messages_the_dlq_refuses_to_delete_are_not_counted_as_deleted(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a failed sync, two dead letters, and an SQS that refuses to delete one of them (its
    # receipt handle spoiled on the way, as by an expired one)
    stack.failed("T-1")
    stack.dead_letters(2)
    session = boto3.Session()

    def spoil_one(params: dict[str, Any], **_: Any) -> None:
        params["Entries"][0]["ReceiptHandle"] = "spoiled"

    session.events.register("provide-client-params.sqs.DeleteMessageBatch", spoil_one)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    # When the failed updates are replayed and the DLQ emptied
    code, report, err = stack.replay(capsys)
    # Then only the message really deleted is counted, and the refusal is the run's error
    assert (code, report["succeeded"], report["dlq_messages_deleted"]) == (1, 1, 1)
    assert "1 message(s) not deleted" in report["dlq_error"]
    assert "cannot empty the DLQ" in err


def test_a_table_that_fails_mid_replay_stops_it_after_reporting_what_it_did(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three failed syncs, their dead letters, and a table that throttles every write after
    # the first
    stack.failed("T-1", "T-2", "T-3")
    stack.dead_letters(3)
    session = boto3.Session()
    writes: list[int] = []

    def throttle_after_the_first(**_: Any) -> tuple[Any, dict[str, Any]] | None:
        writes.append(1)
        if len(writes) == 1:
            return None
        return SimpleNamespace(status_code=400, headers={}), {
            "Error": {"Code": "ThrottlingException", "Message": "Rate of requests exceeds the allowed throughput"}
        }

    session.events.register("before-call.dynamodb.UpdateItem", throttle_after_the_first)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    # When the failed updates are replayed
    code, report, err = stack.replay(capsys)
    # Then the report still comes, with the one recorded as synced and the one whose outcome could
    # not be recorded still failing; the run stops there, says why, and keeps the DLQ
    assert code == 1
    assert (report["attempted"], report["succeeded"], report["still_failing"], len(writes)) == (2, 1, 1, 2)
    assert "ThrottlingException" in report["store_error"]
    assert "ticket-router: error: cannot record the sync of" in err and "replay stopped" in err
    assert "Traceback" not in err
    assert stack.dead_letters_left() == 3


class IndexNotCaughtUp:
    """The decisions table read, for failed syncs, through a sync-status index that has not caught
    up with this run's writes yet (a DynamoDB GSI is eventually consistent): it answers as it stood
    before the replay."""

    def __init__(self, table: DynamoDBDecisionRepository) -> None:
        self._table = table
        self._failed = table.find_by_sync_status(SyncStatus.FAILED, limit=1_000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def find_by_sync_status(self, status: SyncStatus, limit: int = 100, **window: Any) -> list[Any]:
        if status is SyncStatus.FAILED:
            return self._failed[:limit]
        return self._table.find_by_sync_status(status, limit, **window)


def test_updates_the_index_does_not_show_yet_are_not_taken_for_work_the_limit_left(
    stack: AwsReplay, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import bootstrap

    # Given two failed syncs and their dead letters, read through an index that lags the table
    stack.failed("T-1", "T-2")
    stack.dead_letters(2)
    build = bootstrap.build_ticketing_update_deps

    def lagging_deps() -> bootstrap.TicketingUpdateDeps:
        deps = build()
        assert isinstance(deps.repository, DynamoDBDecisionRepository)
        return dataclasses.replace(deps, repository=IndexNotCaughtUp(deps.repository))  # type: ignore[arg-type]

    monkeypatch.setattr(bootstrap, "build_ticketing_update_deps", lagging_deps)
    # When exactly as many as there are are replayed, and all succeed
    code, report, err = stack.replay(capsys, "--limit", "2")
    # Then the run is complete: the two it pushed, still failed in the index, are not work left
    assert (code, report["succeeded"], report["limit_reached"]) == (0, 2, False)
    assert "reached" not in err
    assert stack.dead_letters_left() == 0
