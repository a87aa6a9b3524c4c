"""Routing rules: the domain disposes of whatever an engine proposes.

A proposal comes from a classifier or a language model. Only categories of the taxonomy are
accepted, the team always follows from the category, and low confidence means a person looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from domain.models import CONFIDENCE_DECIMALS, CategoryScore, IssueClassification, TeamScore
from domain.taxonomy import Taxonomy

# Longest stretch of a proposed name quoted in a decision's notes: a model may answer with a name of
# thousands of characters, which would otherwise be stored whole in every audit record it touches.
QUOTED_NAME_MAX_CHARS = 80


def quoted_name(name: str) -> str:
    """A proposed category or team as the notes quote it: cut short past QUOTED_NAME_MAX_CHARS."""
    return repr(name if len(name) <= QUOTED_NAME_MAX_CHARS else name[:QUOTED_NAME_MAX_CHARS] + "…")


class RoutingProposal(BaseModel):
    """What an engine suggests. Untrusted: every field is checked against the taxonomy."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    category: str
    team: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = ""
    alternatives: tuple[CategoryScore, ...] = ()

    @classmethod
    def from_classification(cls, classification: IssueClassification, reasoning: str = "") -> RoutingProposal:
        return cls(
            category=classification.primary_category,
            confidence=classification.confidence,
            alternatives=classification.alternatives,
            reasoning=reasoning,
        )


@dataclass(frozen=True, slots=True)
class RoutingVerdict:
    classification: IssueClassification
    team: str
    requires_manual_review: bool
    alternative_teams: tuple[TeamScore, ...]
    notes: tuple[str, ...] = field(default=())
    # The proposal named a category or team the rules did not follow.
    overruled: bool = False

    @property
    def category(self) -> str:
        return self.classification.primary_category

    @property
    def confidence(self) -> float:
        return self.classification.confidence


def rank_teams(ranked_categories: list[CategoryScore], taxonomy: Taxonomy) -> list[TeamScore]:
    """Team scores are the summed scores of their categories, best first."""
    totals: dict[str, float] = {}
    for item in ranked_categories:
        category = taxonomy.find_category(item.category)
        if category is not None:
            totals[category.team] = totals.get(category.team, 0.0) + item.score
    ordered = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)
    return [TeamScore(team=team, score=round(min(score, 1.0), CONFIDENCE_DECIMALS)) for team, score in ordered]


def overruled_reasoning(reasoning: str) -> tuple[str, ...]:
    """An overruled proposal's reasoning argues for what was not decided: kept for the audit as a
    labelled note, never as the decision's own explanation."""
    reasoning = reasoning.strip()
    return (f"The overruled proposal's reasoning: {reasoning}",) if reasoning else ()


def suggested_teams(
    classification: IssueClassification, fallback: IssueClassification, taxonomy: Taxonomy
) -> tuple[TeamScore, ...]:
    """The top two teams for a reviewer: from the decided classification, topped up from the
    deterministic classifier's ranking when the first names fewer (a model proposal without
    alternatives, or one the rules replaced)."""
    suggested = rank_teams(classification.ranked, taxonomy)[:2]
    for candidate in rank_teams(fallback.ranked, taxonomy):
        if len(suggested) == 2:
            break
        if all(candidate.team != team.team for team in suggested):
            suggested.append(candidate)
    return tuple(suggested)


def _known_alternatives(proposal: RoutingProposal, taxonomy: Taxonomy, primary: str) -> tuple[CategoryScore, ...]:
    seen = {primary}
    kept: list[CategoryScore] = []
    for alt in sorted(proposal.alternatives, key=lambda a: a.score, reverse=True):
        category = taxonomy.find_category(alt.category)
        if category is not None and category.name not in seen:
            seen.add(category.name)
            kept.append(CategoryScore(category=category.name, score=alt.score))
    return tuple(kept)


def apply_routing_rules(
    proposal: RoutingProposal,
    taxonomy: Taxonomy,
    *,
    fallback: IssueClassification,
) -> RoutingVerdict:
    """Turn a proposal into a verdict the business can trust.

    `fallback` is the deterministic classifier's view of the same ticket; it decides whenever the
    proposal names something outside the taxonomy.
    """
    notes: list[str] = []
    rejected = False
    category = taxonomy.find_category(proposal.category)
    if category is None:
        notes.append(
            f"Proposed category {quoted_name(proposal.category)} is not in the taxonomy; rules decided instead."
        )
        rejected = True
    elif proposal.team is not None and proposal.team.strip().casefold() != category.team.casefold():
        known_team = proposal.team.strip().casefold() in {t.casefold() for t in taxonomy.teams}
        reason = "does not handle" if known_team else "is not a known team for"
        notes.append(f"Proposed team {quoted_name(proposal.team)} {reason} {category.name!r}; rules decided the team.")
        rejected = True

    if category is None:
        classification = fallback
        category = taxonomy.find_category(fallback.primary_category)
        if category is None:  # a classifier trained on another label set: route to the first team
            category = taxonomy.categories[0]
            classification = IssueClassification(primary_category=category.name, confidence=0.0)
    else:
        classification = IssueClassification(
            primary_category=category.name,
            # As the decision records it: a model's 0.69996 is recorded as 0.7, and must be routed as 0.7.
            confidence=round(proposal.confidence, CONFIDENCE_DECIMALS),
            alternatives=_known_alternatives(proposal, taxonomy, category.name),
            keywords=fallback.keywords,
        )

    low_confidence = classification.confidence < taxonomy.manual_review_threshold
    if low_confidence:
        # Every decimal recorded: with two, 0.6999 read "Confidence 0.70 is below 0.70".
        notes.append(
            f"Confidence {classification.confidence:g} is below {taxonomy.manual_review_threshold:g}: manual review."
        )
    # A model's scores need not be coherent: it may answer one category at 0.9 and score another
    # team's at 0.95. Its confidence then says nothing of which team is right. (A classifier's
    # answer is its best score: only a tie can do this, at 0.5 at most, below the shipped threshold.)
    contested = [
        alt
        for alt in classification.alternatives
        if round(alt.score, CONFIDENCE_DECIMALS) >= classification.confidence
        and (other := taxonomy.find_category(alt.category)) is not None
        and other.team != category.team
    ]
    if contested and not low_confidence:
        notes.append(
            f"The proposal scores {quoted_name(contested[0].category)} ({round(contested[0].score, CONFIDENCE_DECIMALS):g}) "
            f"at least as high as {category.name!r} ({classification.confidence:g}): manual review."
        )
    requires_review = rejected or low_confidence or bool(contested)
    alternative_teams = suggested_teams(classification, fallback, taxonomy) if requires_review else ()
    return RoutingVerdict(
        classification=classification,
        team=category.team,
        requires_manual_review=requires_review,
        alternative_teams=alternative_teams,
        notes=tuple(notes),
        overruled=rejected,
    )
