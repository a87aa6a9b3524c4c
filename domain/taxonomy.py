"""The routing taxonomy and priority weights, loaded from a TOML file users edit without code."""

from __future__ import annotations

import tomllib
from collections import Counter
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from domain.errors import ConfigurationError
from domain.models import AccountType, PriorityLevel

DEFAULT_TAXONOMY_PATH = Path(__file__).with_name("taxonomy.toml")
# The category the outage floor applied to, by name, before categories could say `outage = true`.
LEGACY_OUTAGE_CATEGORY = "Network Outage"


class Category(BaseModel):
    # Stripped: a name or team typed with a stray space matched no model's answer nor agent's correction.
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1)
    team: str = Field(min_length=1)
    # Strict numbers here and below: read laxly, `severity = true` was a severity of 1, and
    # `manual_review_threshold = true` sent every ticket to review, neither of them said.
    severity: int | None = Field(default=None, ge=0, le=100, strict=True)
    description: str = ""
    # Tickets about a network outage: with an active outage on a service the ticket names or the
    # customer has, such a ticket is at least P1 (see priority.py). Strict: `outage = "no"` is refused,
    # not read as true.
    outage: bool | None = Field(default=None, strict=True)


class PriorityWeights(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Never negative: an outage on the customer's service, a severity, or being a VIP or an
    # Enterprise customer must not lower a priority.
    default_severity: int = Field(default=20, ge=0, le=100, strict=True)
    service_impact: int = Field(default=10, ge=0, strict=True)
    customer: dict[str, Annotated[int, Field(ge=0, strict=True)]] = Field(
        default_factory=lambda: {"vip": 30, "Enterprise": 20, "Business": 10, "Consumer": 0}
    )
    # Hours of age -> points, as in the file; kept sorted from the oldest threshold down.
    age: dict[int, StrictInt] = Field(default_factory=lambda: {48: 20, 24: 10})
    levels: dict[PriorityLevel, StrictInt] = Field(
        default_factory=lambda: {PriorityLevel.P0: 80, PriorityLevel.P1: 60, PriorityLevel.P2: 40}
    )

    @field_validator("customer")
    @classmethod
    def _every_account_type_weighted(cls, value: dict[str, int]) -> dict[str, int]:
        known = {"vip", *(t.value for t in AccountType)}
        missing = known - value.keys()
        if missing:
            raise ValueError(f"priority.customer is missing {sorted(missing)}")
        # No customer has another account type: a weight under another name ('business = 25' added
        # beside 'Business = 10', or a type of the user's own) would be ignored without a word.
        unknown = sorted(value.keys() - known)
        if unknown:
            raise ValueError(f"priority.customer has weights for no account type: {unknown}; known are {sorted(known)}")
        return value

    @field_validator("age")
    @classmethod
    def _oldest_first(cls, value: dict[int, int]) -> dict[int, int]:
        ordered = dict(sorted(value.items(), reverse=True))
        points = list(ordered.values())
        # Only the highest threshold reached counts: fewer points for more hours would rank a ticket
        # lower the longer it waits.
        if any(older < younger for older, younger in pairwise(points)):
            raise ValueError("priority.age must give at least as many points for more hours")
        if any(point < 0 for point in points):  # below the first threshold a ticket has 0
            raise ValueError("priority.age points must not be negative")
        # Every ticket is at least 0 hours old: a negative threshold gave its points to all of them.
        negative = [hours for hours in ordered if hours < 0]
        if negative:
            raise ValueError(f"priority.age thresholds are hours of age and must not be negative: {negative}")
        return ordered

    @field_validator("levels")
    @classmethod
    def _levels_descend(cls, value: dict[PriorityLevel, int]) -> dict[PriorityLevel, int]:
        ordered = [value.get(level) for level in (PriorityLevel.P0, PriorityLevel.P1, PriorityLevel.P2)]
        if any(v is None for v in ordered):
            raise ValueError("priority.levels needs P0, P1 and P2")
        if not ordered[0] > ordered[1] > ordered[2]:  # type: ignore[operator]
            raise ValueError("priority.levels must satisfy P0 > P1 > P2")
        # P3 needs no floor (it is what is below P2); one given above P2 made higher scores P3.
        if PriorityLevel.P3 in value and not value[PriorityLevel.P3] < ordered[2]:  # type: ignore[operator]
            raise ValueError("priority.levels must satisfy P2 > P3")
        return value


class Taxonomy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manual_review_threshold: float = Field(default=0.70, ge=0.0, le=1.0, strict=True)
    categories: tuple[Category, ...] = Field(min_length=1)
    priority: PriorityWeights = PriorityWeights()

    @model_validator(mode="after")
    def _unique_names(self) -> Taxonomy:
        names = [c.name for c in self.categories]
        if len(names) != len(set(names)):
            raise ValueError("category names must be unique")
        return self

    @cached_property
    def by_name(self) -> dict[str, Category]:
        return {c.name: c for c in self.categories}

    @cached_property
    def by_folded_name(self) -> dict[str, Category]:
        # Names that differ only in case (a trained model's "Billing" and "billing") match exactly
        # or not at all: picking one for "BILLING" would be a guess.
        folded = Counter(c.name.casefold() for c in self.categories)
        return {c.name.casefold(): c for c in self.categories if folded[c.name.casefold()] == 1}

    @cached_property
    def outage_categories(self) -> frozenset[str]:
        """The names of the categories whose tickets the outage floor of priority.py applies to."""
        flagged = frozenset(c.name for c in self.categories if c.outage)
        if flagged or any(c.outage is not None for c in self.categories):
            return flagged
        # A taxonomy written before `outage` existed (a copy of the shipped file) had the floor on
        # "Network Outage" by name: it keeps it there rather than losing it silently on upgrade.
        return frozenset(c.name for c in self.categories if c.name == LEGACY_OUTAGE_CATEGORY)

    def is_outage(self, category: str) -> bool:
        found = self.find_category(category)
        return found is not None and found.name in self.outage_categories

    @cached_property
    def teams(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.team for c in self.categories))

    @property
    def category_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def find_category(self, name: str) -> Category | None:
        """Exact match first, then case-insensitive: model output varies in case, never in meaning."""
        return self.by_name.get(name) or self.by_folded_name.get(name.strip().casefold())

    def team_for(self, category: str) -> str:
        found = self.find_category(category)
        if found is None:
            raise KeyError(category)
        return found.team

    def with_label_teams(self, label_teams: dict[str, str], *, source: str = "label-team map") -> Taxonomy:
        """A taxonomy whose categories are a model's own labels (e.g. fine-grained intents), each
        mapped to a team; a label inherits the severity and the outage flag of the first category
        of the same team."""
        # A team no category names has no queue to receive tickets, nor a severity to inherit.
        unknown = sorted(set(label_teams.values()) - set(self.teams))
        if unknown:
            raise ConfigurationError(
                f"{source} names team(s) the taxonomy does not have: {', '.join(map(repr, unknown))}; "
                f"the teams are {', '.join(map(repr, self.teams))}"
            )
        first_of_team: dict[str, Category] = {}
        for category in self.categories:
            first_of_team.setdefault(category.team, category)
        categories = tuple(
            Category(
                name=label,
                team=team,
                severity=first_of_team[team].severity,
                description=f"Label {label}",
                # Explicit, true or false: the labels' taxonomy must not fall back to the legacy name.
                outage=first_of_team[team].name in self.outage_categories,
            )
            for label, team in label_teams.items()
        )
        return Taxonomy(
            manual_review_threshold=self.manual_review_threshold, categories=categories, priority=self.priority
        )

    def severity_of(self, category: str) -> int:
        found = self.find_category(category)
        if found is None or found.severity is None:
            return self.priority.default_severity
        return found.severity


def parse_taxonomy(document: dict[str, Any], *, source: str = "taxonomy") -> Taxonomy:
    try:
        return Taxonomy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"{source} is invalid: {problems}") from exc


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    target = Path(path) if path else DEFAULT_TAXONOMY_PATH
    try:
        document = tomllib.loads(target.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"taxonomy file not found: {target}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"taxonomy file {target} is not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"taxonomy file {target} is not valid TOML: {exc}") from exc
    except RecursionError as exc:
        # tomllib parses nested arrays and inline tables recursively: no real taxonomy nests deeply.
        raise ConfigurationError(f"taxonomy file {target} is TOML nested too deeply to read") from exc
    except OSError as exc:  # a directory, a file we may not read...
        raise ConfigurationError(f"cannot read taxonomy file {target}: {exc.strerror or exc}") from exc
    return parse_taxonomy(document, source=str(target))
