"""Corrections become training rows labelled in the deployment's own labels."""

from __future__ import annotations

from domain.feedback import correction_rows
from domain.models import Feedback, IssueClassification, RoutingDecision
from domain.taxonomy import load_taxonomy
from tests.builders import NOW
from tests.integration.test_sqlite_repository import a_decision

# A queue model's labels, mapped onto the telecom teams: Billing Support receives two of them.
TAXONOMY = load_taxonomy().with_label_teams(
    {"refunds": "Billing Support", "card_fees": "Billing Support", "outages": "Network Operations"}
)


def decided(ticket_id: str, label: str, team: str) -> RoutingDecision:
    return a_decision(ticket_id).model_copy(
        update={
            "assigned_team": team,
            "issue_classification": IssueClassification(primary_category=label, confidence=0.9),
        }
    )


def test_corrections_are_labelled_with_the_deployments_labels_or_left_unlabelled_when_ambiguous() -> None:
    # Given a confirmed decision, a re-route to a team with one label, and one to a team with two
    decisions = {
        "T-1": decided("T-1", "card_fees", "Billing Support"),
        "T-2": decided("T-2", "refunds", "Billing Support"),
        "T-3": decided("T-3", "outages", "Network Operations"),
    }
    feedback = [
        Feedback(ticket_id="T-1", correct_team="Billing Support", recorded_at=NOW),
        Feedback(ticket_id="T-2", correct_team="Network Operations", recorded_at=NOW),
        Feedback(ticket_id="T-3", correct_team="Billing Support", recorded_at=NOW),
    ]
    # When they are exported with confirmations
    rows = correction_rows(feedback, decisions.get, TAXONOMY, include_confirmations=True)
    # Then the confirmation keeps the model's label, the re-route to a one-label team takes that
    # label, and the re-route to a two-label team is left unlabelled rather than given a wrong one
    assert {r["ticket_id"]: r["category"] for r in rows} == {"T-1": "card_fees", "T-2": "outages", "T-3": ""}


def test_a_new_label_on_the_same_team_is_a_correction() -> None:
    # Given a decision labelled card_fees, which an agent relabels refunds on the same team
    decisions = {"T-1": decided("T-1", "card_fees", "Billing Support")}
    feedback = [Feedback(ticket_id="T-1", correct_team="Billing Support", correct_category="refunds", recorded_at=NOW)]
    # When corrections are exported (confirmations left out)
    rows = correction_rows(feedback, decisions.get, TAXONOMY)
    # Then the relabelling is a training row with the agent's label
    assert [(r["ticket_id"], r["category"], r["original_category"]) for r in rows] == [("T-1", "refunds", "card_fees")]
