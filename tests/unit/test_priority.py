"""Priority scoring follows the documented table exactly, overrides included."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest

from domain.errors import ConfigurationError, InvalidField
from domain.models import (
    AccountType,
    NewTicket,
    Outage,
    PriorityAssessment,
    PriorityLevel,
    ServiceStatus,
    Ticket,
)
from domain.priority import PriorityInputs, assess_priority, could_missing_evidence_change_level
from domain.taxonomy import Taxonomy, load_taxonomy, parse_taxonomy
from tests.builders import NOW, a_customer, a_ticket, outages_on

TAXONOMY = load_taxonomy()


def assess(category: str, customer=None, status=None, age_hours=1.0, mentioned=()):  # type: ignore[no-untyped-def]
    return assess_priority(
        PriorityInputs(
            ticket=a_ticket(age_hours=age_hours),
            category=category,
            customer=customer or a_customer(),
            service_status=status or ServiceStatus(),
            mentioned_service_ids=tuple(mentioned),
            now=NOW,
        ),
        TAXONOMY,
    )


@pytest.mark.parametrize(
    ("vip", "account_type", "expected_points"),
    [
        (True, AccountType.CONSUMER, 30),
        (True, AccountType.ENTERPRISE, 30),
        (False, AccountType.ENTERPRISE, 20),
        (False, AccountType.BUSINESS, 10),
        (False, AccountType.CONSUMER, 0),
    ],
)
def test_customer_points(vip: bool, account_type: AccountType, expected_points: int) -> None:
    # Given a customer of each kind, When the priority is assessed
    result = assess("Billing Dispute", customer=a_customer(vip=vip, account_type=account_type))
    # Then VIP replaces the account-type points rather than adding to them
    assert result.factors["customer"] == expected_points


@pytest.mark.parametrize(
    ("category", "severity"),
    [
        ("Network Outage", 40),
        ("Account Access", 30),
        ("Technical Problem", 20),
        ("Billing Dispute", 10),
        ("Something Else", 20),
    ],
)
def test_category_severity(category: str, severity: int) -> None:
    assert assess(category).factors["severity"] == severity


@pytest.mark.parametrize(
    ("age_hours", "points"),
    [(0, 0), (23.99, 0), (24, 10), (47.9, 10), (48, 20), (500, 20)],
)
def test_age_points(age_hours: float, points: int) -> None:
    assert assess("Billing Dispute", age_hours=age_hours).factors["age"] == points


def test_service_impact_counts_outages_on_named_or_owned_services_only() -> None:
    status = outages_on("SVC004")
    # Given an outage on SVC004
    owned = assess("Technical Problem", customer=a_customer(services=["SVC004"]), status=status)
    named = assess("Technical Problem", status=status, mentioned=["SVC004"])
    unrelated = assess("Technical Problem", customer=a_customer(services=["SVC009"]), status=status)
    resolved = assess(
        "Technical Problem", customer=a_customer(services=["SVC004"]), status=outages_on("SVC004", active=False)
    )
    # Then it counts only when the service is the customer's or named in the ticket, and active
    assert (owned.factors["service_impact"], named.factors["service_impact"]) == (10, 10)
    assert (unrelated.factors["service_impact"], resolved.factors["service_impact"]) == (0, 0)


@pytest.mark.parametrize(
    ("score_parts", "level"),
    [
        # customer, category, age -> score
        ((True, "Network Outage", 48), PriorityLevel.P0),  # 30 + 40 + 20 = 90
        ((True, "Network Outage", 0), PriorityLevel.P1),  # 70
        ((False, "Account Access", 48), PriorityLevel.P2),  # 0 + 30 + 20 = 50
        ((False, "Billing Dispute", 24), PriorityLevel.P3),  # 20
        ((True, "Billing Dispute", 0), PriorityLevel.P2),  # 40: boundary is inclusive
        ((True, "Account Access", 0), PriorityLevel.P1),  # 60: boundary is inclusive
    ],
)
def test_levels_from_score(score_parts: tuple[bool, str, int], level: PriorityLevel) -> None:
    vip, category, age = score_parts
    assert assess(category, customer=a_customer(vip=vip), age_hours=age).level is level


def test_score_of_exactly_80_is_p0() -> None:
    # 20 (Enterprise) + 40 (Network Outage) + 20 (48 h) = 80
    result = assess("Network Outage", customer=a_customer(account_type=AccountType.ENTERPRISE), age_hours=48)
    assert (result.score, result.level) == (80, PriorityLevel.P0)


def test_an_outage_counts_on_a_service_id_spelt_in_another_case() -> None:
    # Given an outage the status API reports on SVC004, and a customer DB or ticket writing svc004
    status = outages_on("SVC004")
    owned = assess("Technical Problem", customer=a_customer(services=["svc004"]), status=status)
    named = assess("Technical Problem", status=status, mentioned=["svc004"])
    # Then it is that service's outage all the same
    assert owned.factors["service_impact"] > 0
    assert named.factors["service_impact"] > 0


def test_vip_with_outage_on_own_service_is_p0_whatever_the_score() -> None:
    # Given a VIP whose own service has an active outage, with a low-severity billing ticket
    result = assess("Billing Dispute", customer=a_customer(vip=True, services=["SVC001"]), status=outages_on("SVC001"))
    # Then the score alone would be P2 (30 + 10 + 10 = 50), but the override makes it P0
    assert result.score == 50
    assert result.level is PriorityLevel.P0
    assert result.overrides


def test_vip_override_needs_the_outage_on_their_own_service() -> None:
    result = assess("Billing Dispute", customer=a_customer(vip=True, services=["SVC001"]), status=outages_on("SVC999"))
    # 30 (VIP) + 10 (billing) = 40: P2 by score, and no override since SVC999 is not theirs
    assert (result.score, result.level, result.overrides) == (40, PriorityLevel.P2, ())


def test_network_outage_with_outage_on_affected_service_is_at_least_p1() -> None:
    # Given a consumer's fresh Network Outage ticket naming a service with an active outage
    result = assess("Network Outage", status=outages_on("SVC004"), mentioned=["SVC004"])
    # Then 0 + 40 + 0 + 10 = 50 would be P2, and the override raises it to P1
    assert result.score == 50
    assert result.level is PriorityLevel.P1


def test_network_outage_override_never_lowers_a_level() -> None:
    result = assess(
        "Network Outage",
        customer=a_customer(account_type=AccountType.ENTERPRISE, services=["SVC004"]),
        status=outages_on("SVC004"),
        age_hours=48,
    )
    assert result.level is PriorityLevel.P0  # 20 + 40 + 20 + 10 = 90


def test_network_outage_without_active_outage_gets_no_override() -> None:
    result = assess("Network Outage")
    assert (result.score, result.level, result.overrides) == (40, PriorityLevel.P2, ())


def assess_with(taxonomy: Taxonomy, category: str) -> PriorityAssessment:
    # A consumer's fresh ticket naming a service with an active outage: 0 + 40 + 0 + 10 = 50, P2 by score
    return assess_priority(
        PriorityInputs(
            ticket=a_ticket(),
            category=category,
            customer=a_customer(),
            service_status=outages_on("SVC004"),
            mentioned_service_ids=("SVC004",),
            now=NOW,
        ),
        taxonomy,
    )


def a_taxonomy(categories: str) -> Taxonomy:
    return parse_taxonomy(tomllib.loads(categories))


def test_the_outage_floor_follows_the_outage_flag_not_the_category_name() -> None:
    # Given a taxonomy whose outage category is called something else, and a "Network Outage" that is not one
    taxonomy = a_taxonomy(
        '[[categories]]\nname = "Connectivity"\nteam = "NOC"\nseverity = 40\noutage = true\n'
        '[[categories]]\nname = "Network Outage"\nteam = "NOC"\nseverity = 40\noutage = false\n'
    )
    # When each is assessed with an active outage on the named service
    renamed, unflagged = assess_with(taxonomy, "Connectivity"), assess_with(taxonomy, "Network Outage")
    # Then the flagged category is raised to P1 and the name alone raises nothing
    assert (renamed.level, renamed.overrides) == (
        PriorityLevel.P1,
        ("Connectivity with an active outage on an affected service: at least P1",),
    )
    assert (unflagged.level, unflagged.overrides) == (PriorityLevel.P2, ())


def test_labels_of_a_label_team_map_take_the_outage_floor_of_their_team() -> None:
    # Given a fine-grained model's labels mapped to the shipped taxonomy's teams
    taxonomy = TAXONOMY.with_label_teams({"no_signal": "Network Operations", "router_reboots": "Technical Support"})
    # When a ticket with an active outage on its service is assessed under each label
    no_signal, router = assess_with(taxonomy, "no_signal"), assess_with(taxonomy, "router_reboots")
    # Then the Network Operations label is floored at P1 like Network Outage, the other is not
    assert (no_signal.score, no_signal.level) == (50, PriorityLevel.P1)
    assert (router.score, router.level, router.overrides) == (30, PriorityLevel.P3, ())


def test_a_taxonomy_written_before_the_outage_flag_keeps_the_floor_on_network_outage() -> None:
    # Given a copy of the taxonomy made before categories could say `outage`
    taxonomy = a_taxonomy(
        '[[categories]]\nname = "Network Outage"\nteam = "Network Operations"\nseverity = 40\n'
        '[[categories]]\nname = "Billing Dispute"\nteam = "Billing Support"\n'
    )
    # Then its Network Outage tickets are still floored at P1
    assert assess_with(taxonomy, "Network Outage").level is PriorityLevel.P1
    assert assess_with(taxonomy, "Billing Dispute").overrides == ()


def test_an_outage_flag_that_is_not_a_boolean_is_refused_naming_it() -> None:
    # Given a taxonomy saying `outage = "no"`, which a lax reading would take as set
    with pytest.raises(ConfigurationError, match=r"categories\.0\.outage: Input should be a valid boolean"):
        a_taxonomy('[[categories]]\nname = "Connectivity"\nteam = "NOC"\noutage = "no"\n')


def test_missing_customer_evidence_that_could_hide_a_vip_is_detected() -> None:
    inputs = PriorityInputs(
        ticket=a_ticket(),
        category="Network Outage",
        customer=a_customer(),
        service_status=ServiceStatus(),
        mentioned_service_ids=(),
        now=NOW,
    )
    # Given a 40-point P2 ticket whose customer could not be looked up, a VIP would make it P1
    assert could_missing_evidence_change_level(inputs, TAXONOMY, customer_unknown=True, service_status_unknown=False)
    # And with full evidence nothing is flagged
    assert not could_missing_evidence_change_level(
        inputs, TAXONOMY, customer_unknown=False, service_status_unknown=False
    )


def test_vip_status_never_scores_below_the_same_customer_without_it() -> None:
    # Given a taxonomy weighting VIPs below Enterprise accounts
    weights = TAXONOMY.priority.model_copy(
        update={"customer": {"vip": 15, "Enterprise": 20, "Business": 10, "Consumer": 0}}
    )
    taxonomy = TAXONOMY.model_copy(update={"priority": weights})

    def assessed(vip: bool) -> PriorityAssessment:
        customer = a_customer(vip=vip, account_type=AccountType.ENTERPRISE)
        inputs = PriorityInputs(
            ticket=a_ticket(),
            category="Network Outage",
            customer=customer,
            service_status=ServiceStatus(),
            mentioned_service_ids=(),
            now=NOW,
        )
        return assess_priority(inputs, taxonomy)

    # When the same Enterprise customer is assessed with and without VIP status
    vip, plain = assessed(True), assessed(False)
    # Then being a VIP does not lower the score: 20 + 40 = 60, P1, both ways
    assert (vip.score, vip.level) == (plain.score, plain.level) == (60, PriorityLevel.P1)


def test_an_unknown_customer_may_be_a_vip_whose_own_service_is_down() -> None:
    # Given a taxonomy where VIP is a small bonus
    weights = TAXONOMY.priority.model_copy(
        update={"customer": {"vip": 10, "Enterprise": 20, "Business": 10, "Consumer": 0}}
    )
    taxonomy = TAXONOMY.model_copy(update={"priority": weights})
    inputs = PriorityInputs(
        ticket=a_ticket(),
        category="Billing Dispute",
        customer=a_customer(),
        service_status=ServiceStatus(),
        mentioned_service_ids=(),
        now=NOW,
    )
    # When the customer could not be looked up (a consumer by default: 0 + 10 = 10, P3), and so
    # neither could the services they have, nor those services' outages
    flagged = could_missing_evidence_change_level(inputs, taxonomy, customer_unknown=True, service_status_unknown=False)
    # Then the gap is flagged: a VIP whose own service is down would be P0
    assert assess_priority(inputs, taxonomy).level is PriorityLevel.P3
    assert flagged


@pytest.mark.parametrize("status", ["postmortem", "Cancelled", "canceled"])
def test_an_outage_over_in_a_status_pages_words_raises_nothing(status: str) -> None:
    # Given a VIP whose service had an incident now in postmortem, or a maintenance called off
    outage = Outage(outage_id="O-1", service_id="SVC001", status=status)
    customer = a_customer(vip=True, services=["SVC001"])
    # When a billing ticket is assessed
    result = assess("Billing Dispute", customer=customer, status=ServiceStatus(outages=(outage,)))
    # Then there is no service impact and no VIP outage override: 30 + 10 = 40, P2
    assert (result.factors["service_impact"], result.level, result.overrides) == (0, PriorityLevel.P2, ())


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param(0, id="zero-read-as-1970"),
        pytest.param(12345, id="a-count-read-as-1970"),
        pytest.param("1999-12-31T23:59:59Z", id="before-the-floor"),
        pytest.param("2099-01-01", id="far-in-the-future"),
        pytest.param(NOW + timedelta(minutes=6), id="past-the-clock-skew-allowance"),
    ],
)
def test_a_timestamp_that_would_move_the_age_points_is_refused_naming_it(timestamp: object) -> None:
    # Given a submitted ticket whose timestamp no real ticket has at this moment
    submitted = NewTicket.model_validate({"customer_id": "C-1", "description": "d", "timestamp": timestamp})
    # When it becomes a ticket at the router's now
    # Then it is refused naming its timestamp, rather than scored as days old (or brand new)
    with pytest.raises(InvalidField) as refused:
        submitted.to_ticket(NOW)
    assert refused.value.field == "timestamp"


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("2000-01-01T00:00:00Z", id="the-floor"),
        pytest.param(NOW + timedelta(minutes=5), id="a-sender-clock-a-little-ahead"),
        pytest.param(NOW - timedelta(days=3 * 365), id="years-old"),
    ],
)
def test_a_timestamp_within_the_bounds_is_kept(timestamp: object) -> None:
    submitted = NewTicket.model_validate({"customer_id": "C-1", "description": "d", "timestamp": timestamp})
    ticket = submitted.to_ticket(NOW)
    assert ticket.timestamp == submitted.timestamp


def test_a_stored_ticket_of_any_time_still_validates_as_a_ticket() -> None:
    # Given a ticket stored long ago under a timestamp the edge would refuse today
    # When its event is validated again (the orchestrator, a replay)
    ticket = Ticket.model_validate(
        {"ticket_id": "T-1", "customer_id": "C-1", "description": "d", "timestamp": "2099-01-01T00:00:00Z"}
    )
    # Then it is still read: the bounds are checked where a ticket enters, against the caller's clock
    assert ticket.timestamp.year == 2099
