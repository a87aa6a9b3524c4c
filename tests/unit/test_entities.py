"""Entity extraction recognises the telecom identifiers and normalises phones and money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.entities import extract_entities, normalise_phone


def test_identifiers_are_found_and_error_codes_never_include_account_numbers() -> None:
    # Given a ticket mentioning an account, a service and an error code
    entities = extract_entities("Account ACC-48213 on service SVC004 shows NET-500 and ERR-1042 since Monday")
    # Then each lands in its own list
    assert entities.account_numbers == ("ACC-48213",)
    assert entities.service_ids == ("SVC004",)
    assert entities.error_codes == ("NET-500", "ERR-1042")


def test_duplicates_are_reported_once() -> None:
    entities = extract_entities("SVC004 is down. Again: SVC004. NET-500, NET-500")
    assert entities.service_ids == ("SVC004",)
    assert entities.error_codes == ("NET-500",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call (415) 555-0132 please", "+14155550132"),
        ("call 415-555-0132 please", "+14155550132"),
        ("call 415.555.0132 please", "+14155550132"),
        ("call +1 415 555 0132 please", "+14155550132"),
        ("call +1-415-555-0132.", "+14155550132"),
        ("call 4155550132 please", "+14155550132"),
        ("mobile +44 7700 900123", "+447700900123"),
        ("office 0044 20 7946 0958", "+442079460958"),
        ("office 020 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(text: str, expected: str) -> None:
    assert extract_entities(text).phone_numbers == (expected,)


@pytest.mark.parametrize(
    "text",
    [
        "since 2026-11-20 10:30 nothing works",
        "invoice 2026/11 for order 123456",
        "firmware 1.2.3.4 installed",
        "account ACC-48213 and service SVC004",
    ],
)
def test_dates_versions_and_identifiers_are_not_phone_numbers(text: str) -> None:
    assert extract_entities(text).phone_numbers == ()


def test_national_numbers_use_the_default_region() -> None:
    assert normalise_phone("030 1234567", "DE") == "+49301234567"
    assert normalise_phone("12345", "US") is None


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("charged $49.99 twice", "49.99", "USD"),
        ("billed USD 120 for roaming", "120", "USD"),
        ("49,99 EUR per line", "49.99", "EUR"),
        ("a £15 fee", "15", "GBP"),
        ("€1.234,56 in total", "1234.56", "EUR"),
        ("$1,234.56 in total", "1234.56", "USD"),
        ("refund of 300 dollars", "300", "USD"),
    ],
)
def test_monetary_amounts(text: str, amount: str, currency: str) -> None:
    money = extract_entities(text).monetary_amounts
    assert [(m.amount, m.currency) for m in money] == [(Decimal(amount), currency)]


def test_emails_are_extracted_for_masking() -> None:
    assert extract_entities("write to jane.doe@example.com").emails == ("jane.doe@example.com",)


def test_plain_text_has_no_entities() -> None:
    entities = extract_entities("My wifi keeps dropping every evening.")
    assert entities.model_dump() == {
        "account_numbers": (),
        "service_ids": (),
        "error_codes": (),
        "phone_numbers": (),
        "monetary_amounts": (),
        "emails": (),
    }
