"""`ticket-router dlq replay` in the embedded mode: failed updates reach the outbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.models import SyncStatus
from handlers.cli import main
from tests.integration.test_sqlite_repository import a_decision


def test_replay_moves_failed_decisions_to_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local store with two decisions whose sync failed and one that succeeded
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    for i, ticket_id in enumerate(["T-1", "T-2", "T-3"]):
        store.save(a_decision(ticket_id, timestamp=i))
    store.update_sync_status("T-1", 0, SyncStatus.FAILED, error="503")
    store.update_sync_status("T-2", 1, SyncStatus.FAILED, error="timeout")
    store.update_sync_status("T-3", 2, SyncStatus.SUCCESS)
    store.close()
    # When the DLQ is replayed
    code = main(["dlq", "replay"])
    report = json.loads(capsys.readouterr().out)
    # Then both failed updates are pushed once, and nothing is left failing
    assert code == 0
    assert (report["attempted"], report["succeeded"], report["still_failing"]) == (2, 2, 0)
    outbox = [json.loads(line)["ticket_id"] for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert sorted(outbox) == ["T-1", "T-2"]
    store = SqliteDecisionRepository(tmp_path / "ticket-router.db")
    assert store.find_by_sync_status(SyncStatus.FAILED) == []
    store.close()
