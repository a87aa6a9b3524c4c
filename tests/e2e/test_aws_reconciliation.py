"""The AWS flow benchmark's reconciliation, small: under ticketing faults and duplicate deliveries, every
accepted ticket ends with one decision, synced or visibly failed, and a replay syncs the failed ones."""

from __future__ import annotations

import os

import boto3

from bench.aws_flow import run


def test_faults_and_duplicates_lose_nothing_and_duplicate_nothing() -> None:
    environment, session = dict(os.environ), boto3.DEFAULT_SESSION
    # When 40 tickets go through the three functions, 30 % of them meeting a ticketing fault
    result = run(count=40, fault_rate=0.3)
    reconciliation = result["reconciliation"]

    # Then the faults and the duplicate deliveries did happen
    assert sum(result["faults_planned"].values()) == 12
    assert result["duplicates_delivered"]["eventbridge_events"] > 0
    assert result["duplicates_delivered"]["stream_batches"] > 0
    # And every accepted ticket has one decision, either synced or findable as failed
    assert reconciliation["accepted"] == reconciliation["decisions_stored"] == 40
    assert reconciliation["synced"] + reconciliation["failed_visible"] == 40
    assert reconciliation["failed_visible"] == result["faults_planned"]["503-permanent"] > 0
    assert reconciliation["lost"] == 0
    # And no duplicate made a second decision or a second successful PUT
    assert reconciliation["duplicate_decisions"] == 0
    assert reconciliation["duplicate_puts"] == 0
    # And the replay synced every failed decision, each applied once
    assert reconciliation["replayed_ok"] == reconciliation["failed_visible"]
    assert reconciliation["synced_after_replay"] == reconciliation["distinct_applied_keys_after_replay"] == 40
    assert reconciliation["reconciled"] is True
    # And the run left the process environment as it found it
    assert dict(os.environ) == environment
    assert boto3.DEFAULT_SESSION is session
