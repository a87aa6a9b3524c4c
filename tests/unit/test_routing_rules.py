"""The domain disposes: proposals outside the taxonomy are rejected, low confidence goes to a person."""

from __future__ import annotations

import pytest

from domain.models import CategoryScore, IssueClassification
from domain.routing import RoutingProposal, apply_routing_rules
from domain.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
FALLBACK = IssueClassification(
    primary_category="Technical Problem",
    confidence=0.8,
    alternatives=(CategoryScore(category="Network Outage", score=0.2),),
)


def propose(category: str, confidence: float, team: str | None = None, alternatives=()) -> RoutingProposal:  # type: ignore[no-untyped-def]
    return RoutingProposal(category=category, team=team, confidence=confidence, alternatives=tuple(alternatives))


@pytest.mark.parametrize(
    ("category", "team"),
    [
        ("Network Outage", "Network Operations"),
        ("Billing Dispute", "Billing Support"),
        ("Technical Problem", "Technical Support"),
        ("Account Access", "Account Management"),
    ],
)
def test_each_category_routes_to_its_team(category: str, team: str) -> None:
    verdict = apply_routing_rules(propose(category, 0.9), TAXONOMY, fallback=FALLBACK)
    assert (verdict.team, verdict.requires_manual_review, verdict.alternative_teams) == (team, False, ())


def test_confidence_at_threshold_is_routed_automatically() -> None:
    verdict = apply_routing_rules(propose("Billing Dispute", 0.70), TAXONOMY, fallback=FALLBACK)
    assert not verdict.requires_manual_review


def test_confidence_below_threshold_flags_review_with_top_two_teams() -> None:
    # Given a proposal just under 0.70 with ranked alternatives
    proposal = propose(
        "Billing Dispute",
        0.69,
        alternatives=[
            CategoryScore(category="Account Access", score=0.2),
            CategoryScore(category="Network Outage", score=0.11),
        ],
    )
    # When the rules apply
    verdict = apply_routing_rules(proposal, TAXONOMY, fallback=FALLBACK)
    # Then a person reviews it, with the two best teams and their scores suggested
    assert verdict.requires_manual_review
    assert [(t.team, t.score) for t in verdict.alternative_teams] == [
        ("Billing Support", 0.69),
        ("Account Management", 0.2),
    ]


def test_unknown_category_is_rejected_and_the_fallback_decides_with_review() -> None:
    verdict = apply_routing_rules(propose("Escalate To CEO", 0.99), TAXONOMY, fallback=FALLBACK)
    assert verdict.team == "Technical Support"
    assert verdict.category == "Technical Problem"
    assert verdict.requires_manual_review
    assert any("not in the taxonomy" in note for note in verdict.notes)


def test_a_proposed_name_of_thousands_of_characters_is_quoted_cut_short_in_the_notes() -> None:
    # Given a model answering with a category and a team of 5,000 characters each
    long_category, long_team = "X" * 5_000, "Y" * 5_000
    # When the rules dispose of each
    unknown_category = apply_routing_rules(propose(long_category, 0.99), TAXONOMY, fallback=FALLBACK)
    unknown_team = apply_routing_rules(propose("Billing Dispute", 0.95, team=long_team), TAXONOMY, fallback=FALLBACK)
    # Then the notes, stored with every decision, quote only the start of each name
    notes = [*unknown_category.notes, *unknown_team.notes]
    assert any("'" + "X" * 80 + "…'" in note for note in notes)
    assert any("'" + "Y" * 80 + "…'" in note for note in notes)
    assert max(len(note) for note in notes) < 300


def test_unknown_team_is_rejected_and_the_category_decides_the_team() -> None:
    verdict = apply_routing_rules(
        propose("Billing Dispute", 0.95, team="Executive Office"), TAXONOMY, fallback=FALLBACK
    )
    assert verdict.team == "Billing Support"
    assert verdict.requires_manual_review


def test_known_team_that_does_not_handle_the_category_is_rejected() -> None:
    verdict = apply_routing_rules(
        propose("Billing Dispute", 0.95, team="Network Operations"), TAXONOMY, fallback=FALLBACK
    )
    assert verdict.team == "Billing Support"
    assert verdict.requires_manual_review


def test_category_names_match_case_insensitively() -> None:
    verdict = apply_routing_rules(
        propose("network outage", 0.9, team="network operations"), TAXONOMY, fallback=FALLBACK
    )
    assert (verdict.category, verdict.team, verdict.requires_manual_review) == (
        "Network Outage",
        "Network Operations",
        False,
    )


def test_a_proposal_without_alternatives_still_suggests_two_teams() -> None:
    # Given a low-confidence proposal that names no alternative (a model's answer, say)
    # When the rules apply
    verdict = apply_routing_rules(propose("Billing Dispute", 0.6), TAXONOMY, fallback=FALLBACK)
    # Then the reviewer still gets two teams: the proposal's, then the classifier's best other one
    assert verdict.requires_manual_review
    assert [t.team for t in verdict.alternative_teams] == ["Billing Support", "Technical Support"]


def test_a_rejected_team_suggests_the_rules_team_and_the_classifier_s_next() -> None:
    # Given a confident proposal whose team does not handle its category
    verdict = apply_routing_rules(
        propose("Technical Problem", 0.95, team="Billing Support"), TAXONOMY, fallback=FALLBACK
    )
    # Then the rules' team leads and the classifier's runner-up completes the pair
    assert [t.team for t in verdict.alternative_teams] == ["Technical Support", "Network Operations"]


def test_team_scores_are_rounded_to_the_precision_of_confidences(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given confidences kept to two decimals instead of four
    import domain.routing

    monkeypatch.setattr(domain.routing, "CONFIDENCE_DECIMALS", 2)
    ranked = [
        CategoryScore(category="Network Outage", score=0.123456),
        CategoryScore(category="Billing Dispute", score=0.654321),
    ]
    # When categories are summed into team scores
    teams = domain.routing.rank_teams(ranked, TAXONOMY)
    # Then the team scores follow that precision, so a reviewer never sees more digits than the confidence has
    assert [(t.team, t.score) for t in teams] == [("Billing Support", 0.65), ("Network Operations", 0.12)]


def test_review_and_its_note_agree_with_the_confidence_recorded() -> None:
    # Given model proposals a hair either side of the 0.70 threshold, at more decimals than are recorded
    recorded_as_threshold = apply_routing_rules(propose("Billing Dispute", 0.69996), TAXONOMY, fallback=FALLBACK)
    just_below = apply_routing_rules(propose("Billing Dispute", 0.6999), TAXONOMY, fallback=FALLBACK)
    # Then one recorded as 0.7 is routed as 0.7 is, automatically
    assert (recorded_as_threshold.confidence, recorded_as_threshold.requires_manual_review) == (0.7, False)
    # And the note of one below says by how much, not that 0.70 is below 0.70
    assert just_below.requires_manual_review
    assert "Confidence 0.6999 is below 0.7: manual review." in just_below.notes


@pytest.mark.parametrize("runner_up_score", [0.9, 0.95])
def test_a_proposal_scoring_another_team_s_category_as_high_as_its_own_goes_to_review(runner_up_score: float) -> None:
    # Given a confident proposal whose own runner-up, another team's category, scores as high or higher
    proposal = propose(
        "Billing Dispute",
        0.9,
        alternatives=[CategoryScore(category="Network Outage", score=runner_up_score)],
    )
    # When the rules apply
    verdict = apply_routing_rules(proposal, TAXONOMY, fallback=FALLBACK)
    # Then its team stands, but a person chooses between the two it could not tell apart
    assert verdict.team == "Billing Support"
    assert verdict.requires_manual_review
    assert {t.team for t in verdict.alternative_teams} == {"Billing Support", "Network Operations"}
    assert "'Network Outage'" in " ".join(verdict.notes)


def test_a_runner_up_of_the_same_team_scoring_as_high_does_not_flag_review() -> None:
    # Given a confident proposal whose runner-up, as high, is a category of its own team
    taxonomy = TAXONOMY.with_label_teams(
        {"billing_double_charge": "Billing Support", "billing_refund": "Billing Support"}
    )
    proposal = propose("billing_double_charge", 0.9, alternatives=[CategoryScore(category="billing_refund", score=0.9)])
    # When the rules apply, then the team is not in doubt and no one is asked
    verdict = apply_routing_rules(proposal, taxonomy, fallback=FALLBACK)
    assert (verdict.team, verdict.requires_manual_review) == ("Billing Support", False)
