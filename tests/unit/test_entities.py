"""Entity extraction recognises the telecom identifiers and normalises phones and money."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from domain.entities import extract_entities, mask_personal_data, normalise_phone


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("office +44 (0)20 7946 0958", "+442079460958"),
        ("office +49 (0)30 12345678", "+493012345678"),
        ("office 0044 (0)20 7946 0958", "+442079460958"),
    ],
)
def test_the_trunk_zero_written_after_the_country_code_is_dropped(text: str, expected: str) -> None:
    # Given a number written "+44 (0)20 ...", with the national trunk prefix in brackets
    # When entities are extracted
    phones = extract_entities(text).phone_numbers
    # Then the E.164 number has no trunk zero
    assert phones == (expected,)


def test_a_service_id_may_be_written_with_a_space() -> None:
    # Given a service id written with a space, as accounts may be
    # When entities are extracted
    entities = extract_entities("service SVC 004 is down")
    # Then the service id is found in its canonical form
    assert entities.service_ids == ("SVC004",)


def test_reference_numbers_are_not_error_codes_and_acct_is_an_account() -> None:
    # Given a ticket quoting invoices, payments, orders and other references next to real error codes
    text = (
        "Invoice INV-2026-11834 and payment PAY-77120 (credit note CN-33019, outage OUT-2026-311) "
        "for ACCT-48213, order ORD-1234, ref REF-5512: modem shows NET-500, ERR-1042 and DSL-651"
    )
    # When entities are extracted
    entities = extract_entities(text)
    # Then only the real error codes are error codes, and ACCT-48213 is the account
    assert entities.error_codes == ("NET-500", "ERR-1042", "DSL-651")
    assert entities.account_numbers == ("ACC-48213",)


def test_acct_with_a_space_is_an_account_number() -> None:
    assert extract_entities("customer ACCT 48213 called").account_numbers == ("ACC-48213",)


@pytest.mark.parametrize(
    ("text", "value", "account"),
    [
        ("my account number 12345678 was charged twice", "12345678", "ACC-12345678"),
        ("acct no. 987654321, refund please", "987654321", "ACC-987654321"),
        ("A/C # 1234 5678 90 please", "1234 5678 90", "ACC-1234567890"),
        ("Account ID: 55512345", "55512345", "ACC-55512345"),
        ("my account 12345678 2 times billed", "12345678", "ACC-12345678"),
        ("Meine Kundennummer ist 12345678", "12345678", "ACC-12345678"),
        ("Kunden-Nr.: 12345678, Rechnung falsch", "12345678", "ACC-12345678"),
        ("Kontonummer 0532013000", "0532013000", "ACC-0532013000"),
        ("mon numéro de compte est 123 456 789", "123 456 789", "ACC-123456789"),
        ("n° client : 12345678", "12345678", "ACC-12345678"),
        # Named so, a national number is the account, not a phone
        ("customer number 0151 23456789", "0151 23456789", "ACC-015123456789"),
        # A long run with its branch or check digits after a hyphen
        ("Your account 12345-678 was suspended", "12345-678", "ACC-12345678"),
        ("Kundennummer 123456-7, Rechnung doppelt", "123456-7", "ACC-1234567"),
        # A short run in the groups a German or French customer number is printed in
        ("Kundennummer 12345 678 90", "12345 678 90", "ACC-1234567890"),
        ("Meine Kundennummer: 123456 789, Rechnung doppelt", "123456 789", "ACC-123456789"),
        ("numéro client 12345 6789 12", "12345 6789 12", "ACC-12345678912"),
        # Named in the plain words for an account
        ("customer no 12345678, double charge", "12345678", "ACC-12345678"),
        ("Mein Kundenkonto 12345678 ist gesperrt", "12345678", "ACC-12345678"),
        ("Konto: 87654321, Rechnung doppelt", "87654321", "ACC-87654321"),
        ("mon compte 12345678 est bloqué", "12345678", "ACC-12345678"),
        ("compte client : 12345678", "12345678", "ACC-12345678"),
        # "SMS" names a kind of alert or code here, not how many
        ("account 12345678 SMS alerts stopped", "12345678", "ACC-12345678"),
        ("Kundennummer 12345678 SMS-Benachrichtigungen fehlen", "12345678", "ACC-12345678"),
        ("account no 98765432 sms code never arrives", "98765432", "ACC-98765432"),
    ],
)
def test_an_account_number_named_as_one_is_found_and_masked(text: str, value: str, account: str) -> None:
    # When a ticket naming its account number, not written ACC-..., is read
    entities = extract_entities(text)
    masked = mask_personal_data(text)
    # Then extraction reports the account, as "acct 48213" is reported, and not as a phone
    assert entities.account_numbers == (account,) and entities.phone_numbers == ()
    # And the model's copy has a placeholder in its place, which its answer gets back
    assert value not in masked.text and "<ACCOUNT_1>" in masked.text
    assert masked.restore("<ACCOUNT_1>") == value


@pytest.mark.parametrize(
    "text",
    [
        "order number 12345678 never arrived, ticket 987654 still open",
        "My account was charged 49.99 EUR on 2026-11-01 and again on 2026-11-03",
        "account 12500 EUR overdue",
        "an account of 15000 customers",
        "account number changed after the migration in 2024",
        "Customer since 2015, account balance 12345.67",
        "Mein Kundenkonto ist gesperrt, Rechnung 2026-11834 falsch",
        "mon compte client est bloqué depuis le 12/11, facture n° 123456",
        # A count of a unit after the name is a volume, not the account
        "account 12345 GB used",
        "my account 100000 Mbps plan",
        "account 50000 minutes",
        "account 20000 SMS left",
        "account 20000 SMS per month",
        "Kundennummer 12345 SMS übrig",
        "acct 50000 SMS.",
        "acct 50000 minutes",
        "Kundennummer 12345 Minuten",
        "numéro client 12345 Go consommés",
        # A date after the name is when, not which account
        "Account: 2026-11-03 double charge of 29.99 EUR",
        "My account 2026-11-25 was suspended without notice",
    ],
)
def test_numbers_near_an_accounts_name_but_not_named_by_it_are_kept(text: str) -> None:
    assert mask_personal_data(text).text == text
    assert extract_entities(text).account_numbers == ()


@pytest.mark.parametrize(
    ("text", "masked", "account", "phones"),
    [
        ("my account 123456 20 times billed", "my account <ACCOUNT_1> 20 times billed", "ACC-123456", ()),
        ("Kundennummer 12345 030 1234567", "Kundennummer <ACCOUNT_1> <PHONE_1>", "ACC-12345", ("+49301234567",)),
        ("Kundennummer 12345 2026-11-03 gesperrt", "Kundennummer <ACCOUNT_1> 2026-11-03 gesperrt", "ACC-12345", ()),
    ],
)
def test_a_count_a_phone_or_a_date_after_a_short_account_run_is_not_read_as_its_groups(
    text: str, masked: str, account: str, phones: tuple[str, ...]
) -> None:
    # When an account number named as one is followed by a count, a phone number or a date
    entities = extract_entities(text, "DE")
    # Then only the run is the account, and what follows keeps its own meaning
    assert mask_personal_data(text, "DE").text == masked
    assert entities.account_numbers == (account,)
    assert entities.phone_numbers == phones


@pytest.mark.parametrize(
    ("text", "account"),
    [("ACC-12345 GB used", "ACC-12345"), ("account 12345 line 2 is dead", "ACC-12345")],
)
def test_an_account_written_as_an_id_or_before_a_singular_word_is_still_an_account(text: str, account: str) -> None:
    assert extract_entities(text).account_numbers == (account,)
    assert "12345" not in mask_personal_data(text).text


def test_a_card_number_given_as_the_account_number_is_a_card_and_no_account() -> None:
    # Given a card number written after an account's name
    text = "my account number is 4111 1111 1111 1111"
    # Then it is masked as a card, never restored, and not reported (nor stored) as an account
    assert mask_personal_data(text).text == "my account number is <CARD_1>"
    assert extract_entities(text).account_numbers == ()


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("mail me at jane(at)example.com please", "jane(at)example.com"),
        ("jane [at] example [dot] com", "jane [at] example [dot] com"),
        ("write to Jane.Doe {at} example {dot} co {dot} uk.", "Jane.Doe {at} example {dot} co {dot} uk"),
        ("my email is jane at example dot com", "jane at example dot com"),
        ("MY EMAIL: JANE.DOE AT GMAIL DOT COM", "JANE.DOE AT GMAIL DOT COM"),
        ("jane@example dot com", "jane@example dot com"),
        ("jane@example[.]com", "jane@example[.]com"),
        ("Mail an max (ät) beispiel (punkt) de", "max (ät) beispiel (punkt) de"),
        ("écrivez à jean arobase exemple point fr", "jean arobase exemple point fr"),
        ("jane123(at)example.com or 415-555-0132", "jane123(at)example.com"),
        # A name before a bare "at", in a sentence that also names a site
        ("I tested at fast dot com, mail jane at example dot com", "jane at example dot com"),
        ("Please note that jane at example dot com is mine", "jane at example dot com"),
        # A site's host word as the whole domain's name is a mail provider's
        ("mail Jane.Doe at my dot com", "Jane.Doe at my dot com"),
    ],
)
def test_an_address_written_to_pass_a_spam_filter_is_masked_and_restored(text: str, address: str) -> None:
    # When a ticket giving an address in words or brackets is masked
    masked = mask_personal_data(text)
    # Then the address is gone, and a model's answer quoting its placeholder gets it back
    assert address not in masked.text and "<EMAIL_1>" in masked.text
    assert masked.restore("<EMAIL_1>") == address


@pytest.mark.parametrize(
    "text",
    [
        "look at speedtest.net, it says 2 Mbit",
        "we are at example.com for the portal",
        "I am at home dot com is not a site",
        "the router at home dot not working",
        "I'm at home, dot com is down",
        "Hello, I'm at home dot com support page",
        "connect at 10.0.0.1 fails",
        "Meet me at 5 dot",
        "Le technicien est venu à 10h, point final",
        "Ich bin um 10 Uhr at home, Punkt.",
        # A site named with a bare "at" is no one's address
        "I tested at fast dot com, 3 Mbps",
        "The page at netflix dot com does not load",
        "Speed test at speedtest dot net shows 2 Mbit",
        "I ran a test at fast dot com twice",
        "got 20 Mbps at fast dot com",
        "Outage reported at status dot vodafone dot de since 09:00",
        "Signed up online yesterday at www dot telekom dot de",
    ],
)
def test_words_around_at_and_dot_that_name_no_address_are_kept(text: str) -> None:
    assert mask_personal_data(text).text == text


def test_only_uk_shaped_national_numbers_become_uk_phones_on_a_us_desk() -> None:
    # Given a US desk and a ticket with a 10-digit reference, an Australian mobile and two UK numbers
    text = "reference 0123456789, AU mobile 0412 345 678, office 020 7946 0958, mobile 07700 900123"
    # When entities are extracted with the default region
    phones = extract_entities(text, "US").phone_numbers
    # Then only the UK-shaped numbers are taken for UK phones
    assert phones == ("+442079460958", "+447700900123")


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("Refund request #2 100 EUR", "100", "EUR"),
        ("CHF 1'234.50 charged", "1234.50", "CHF"),
        ("CHF 1\u2019234.50 charged", "1234.50", "CHF"),
    ],
)
def test_amounts_after_a_hash_and_with_swiss_separators(text: str, amount: str, currency: str) -> None:
    # Given a ticket with an ordinal before an amount, or a Swiss thousands separator
    # When entities are extracted
    money = extract_entities(text).monetary_amounts
    # Then the amount is the one the customer meant
    assert [(m.amount, m.currency) for m in money] == [(Decimal(amount), currency)]


def test_amounts_with_more_than_twelve_integer_digits_are_not_money() -> None:
    # Given a ticket with absurd amounts (DynamoDB could not even store the first) and a large real one
    text = "charged 12345678901234567890123456789012345678901 USD, then 1234567890123 EUR, then 999999999999.99 GBP"
    # When entities are extracted
    money = extract_entities(text).monetary_amounts
    # Then only the amount with at most twelve integer digits is money
    assert [(m.amount, m.currency) for m in money] == [(Decimal("999999999999.99"), "GBP")]


def test_a_date_next_to_a_phone_number_does_not_hide_it_from_masking() -> None:
    # Given a phone number followed by a date
    text = "reach me 415-555-0132 2026-11-20"
    # When the text is masked
    masked = mask_personal_data(text, "US")
    # Then the phone number is masked and the date kept
    assert masked.text == "reach me <PHONE_1> 2026-11-20"
    assert masked.restore(masked.text) == text


_REALISTIC_TICKETS = [
    "Hi, my line ACC-48213 is dead since 2026-11-20 08:15. Call me on 415-555-0132 or jane.doe@example.com.",
    "reach me 415-555-0132 2026-11-20",
    "Charged $49.99 twice on 2026-11-02; my number is (415) 555-0132 12:30 works best.",
    "Customer called from +44 (0)20 7946 0958 at 10:30 about invoice INV-2026-11834.",
    "Please ring 020 7946 0958 2026-11-21 after 17:00, or mobile 07700 900123.",
    "Two numbers on file: 07700 900123 07700 900456",
    "Rückruf bitte unter 030 1234567 2026-11-20 ab 09:00, Kundennummer ACCT 48213.",
    "Outage on SVC 004, error NET-500 at 14:05; callback +49 (0)30 12345678 or +1 (415) 555-0199.",
]


@pytest.mark.parametrize("region", ["US", "GB", "DE"])
def test_every_phone_number_extraction_finds_is_masked(region: str) -> None:
    # Given realistic tickets, and the phone numbers extraction finds in them for the region
    for text in _REALISTIC_TICKETS:
        phones = extract_entities(text, region).phone_numbers
        # When the ticket is masked for the same region
        masked = mask_personal_data(text, region).text
        # Then none of those numbers survives, however it was written
        left = re.sub(r"[\s().+-]", "", masked)
        survivors = [phone for phone in phones if phone[-7:] in left]
        assert survivors == [], f"{text!r} -> {masked!r}"


def test_two_uk_mobiles_one_space_apart_are_both_found_and_masked() -> None:
    # Given two UK mobiles separated by a single space
    text = "07700 900123 07700 900456"
    # When the text is read with region GB
    phones = extract_entities(text, "GB").phone_numbers
    masked = mask_personal_data(text, "GB").text
    # Then both numbers are found and masked
    assert phones == ("+447700900123", "+447700900456")
    assert masked == "<PHONE_1> <PHONE_2>"


def test_a_long_table_of_numbers_is_read_in_one_pass() -> None:
    # Given a ticket pasting a long space-separated table of three-digit figures, then a real amount
    # (each figure could start an amount, and each used to be read to the table's end: minutes here)
    text = "ping times: 1" + " 234" * 50_000 + " in total €49.99"
    # When entities are extracted
    money = extract_entities(text).monetary_amounts
    # Then the table is no amount and the real one is found
    assert [(m.amount, m.currency) for m in money] == [(Decimal("49.99"), "EUR")]


def test_a_long_run_of_address_characters_is_read_in_one_pass() -> None:
    # Given a ticket with a long dotted run and no "@" in it (each of its letters could start an
    # address, and each used to be read to the run's end: minutes here), then a real address
    text = "trace " + "a." * 100_000 + " reply to -jane.doe@example.com"
    # When entities are extracted and the text masked
    emails = extract_entities(text).emails
    masked = mask_personal_data(text)
    # Then the address alone is found, without the dash before it, and masked
    assert emails == ("jane.doe@example.com",)
    assert masked.text.endswith(" reply to -<EMAIL_1>")
    assert masked.restore(masked.text) == text


def test_full_width_and_other_script_digits_are_read_as_the_identifiers_they_are() -> None:
    # Given a ticket typed on a full-width keyboard, with a number in Arabic-Indic digits too
    text = "ＳＶＣ００４ down, ERR-１０４２, account ＡＣＣ-４８２１３, call ４１５-５５５-０１３２ or ٤١٥٥٥٥٠١٩٩"
    # When entities are extracted and the text masked
    entities = extract_entities(text)
    masked = mask_personal_data(text).text
    # Then the identifiers are found in ASCII, as the services and accounts they name are stored
    assert (entities.service_ids, entities.error_codes, entities.account_numbers) == (
        ("SVC004",),
        ("ERR-1042",),
        ("ACC-48213",),
    )
    assert entities.phone_numbers == ("+14155550132", "+14155550199")
    # And neither phone number nor the account reaches a model or a log
    assert masked == "ＳＶＣ００４ down, ERR-１０４２, account <ACCOUNT_1>, call <PHONE_1> or <PHONE_2>"


@pytest.mark.parametrize("dash", ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212"])
def test_a_phone_number_with_a_word_processors_dashes_is_found_and_masked(dash: str) -> None:
    # Given a phone number pasted from a document that turned its hyphens into another dash
    text = f"call 415{dash}555{dash}0132 about ERR{dash}1042"
    # When entities are extracted and the text masked
    entities = extract_entities(text)
    masked = mask_personal_data(text).text
    # Then the number and the error code are found, and the number is masked
    assert (entities.phone_numbers, entities.error_codes) == (("+14155550132",), ("ERR-1042",))
    assert masked == f"call <PHONE_1> about ERR{dash}1042"


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("roaming billed at $0.015 per minute", "0.015", "USD"),
        ("data at €0,0125/MB", "0.0125", "EUR"),
        ("0.005 GBP per text", "0.005", "GBP"),
    ],
)
def test_a_rate_below_one_keeps_all_its_decimals(text: str, amount: str, currency: str) -> None:
    # Given a per-minute or per-MB rate with more than two decimals
    # When entities are extracted
    money = extract_entities(text).monetary_amounts
    # Then it is the fraction written, not a thousand times more
    assert [(m.amount, m.currency) for m in money] == [(Decimal(amount), currency)]


@pytest.mark.parametrize(
    "text",
    [
        "call 415\u200b555\u200b0132 now",  # zero-width spaces, as some chat apps paste them
        "call \u200f+1 415\u200e 555\u200e 0132\u200f now",  # bidi marks of a right-to-left ticket
        "call 415\u00ad555\u00ad0132 now",  # soft hyphens
    ],
)
def test_a_phone_number_with_invisible_characters_in_it_is_found_and_masked(text: str) -> None:
    # Given a phone number with invisible format characters between its groups
    # When entities are extracted and the text masked
    phones = extract_entities(text).phone_numbers
    masked = mask_personal_data(text)
    # Then the number is found and masked, and the text restores to what it was
    assert phones == ("+14155550132",)
    assert "<PHONE_1>" in masked.text
    assert not re.search(r"\d", masked.text.replace("<PHONE_1>", ""))
    assert masked.restore(masked.text) == text


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("Tel.+49 30 12345678", "DE", "+493012345678"),
        ("Mob.07700 900123", "GB", "+447700900123"),
        ("ph.415-555-0132", "US", "+14155550132"),
    ],
)
def test_a_phone_number_right_after_an_abbreviations_dot_is_found_and_masked(
    text: str, region: str, expected: str
) -> None:
    # Given a number written straight after "Tel.", "Mob." or "ph."
    # When entities are extracted and the text masked
    phones = extract_entities(text, region).phone_numbers
    masked = mask_personal_data(text, region).text
    # Then it is found and masked like any other
    assert phones == (expected,)
    assert masked.endswith(".<PHONE_1>")


@pytest.mark.parametrize("text", ["total 12.4155550132", "ip 192.168.100.254", "firmware 1.2.3.4567890"])
def test_no_phone_number_starts_inside_a_decimal_or_dotted_number(text: str) -> None:
    assert extract_entities(text).phone_numbers == ()


def test_an_address_with_letters_beyond_ascii_is_found_and_masked_whole() -> None:
    # Given addresses with accented letters in the name and in the domain
    text = "write to jürgen@example.de or info@müller.de"
    # When entities are extracted and the text masked
    emails = extract_entities(text).emails
    masked = mask_personal_data(text).text
    # Then both are found whole, and nothing of them is left in the masked text
    assert emails == ("jürgen@example.de", "info@müller.de")
    assert masked == "write to <EMAIL_1> or <EMAIL_2>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tel./Fax 030/1234567", "+49301234567"),
        ("Handy 0171 / 123 45 67.", "+491711234567"),
        ("Zentrale (0711)/12345-67", "+497111234567"),
    ],
)
def test_a_german_number_with_a_slash_after_the_area_code_is_found_and_masked(text: str, expected: str) -> None:
    # Given a number written the German way, a slash after the area code
    # When entities are extracted and the text masked for a German desk
    phones = extract_entities(text, "DE").phone_numbers
    masked = mask_personal_data(text, "DE").text
    # Then it is found and masked
    assert phones == (expected,)
    assert "<PHONE_1>" in masked
    assert not re.search(r"\d", masked.replace("<PHONE_1>", ""))


@pytest.mark.parametrize("text", ["invoice 2026/123456", "on 01/12/2026 0800", "speeds 10/100/1000", "ref 0815/4711"])
def test_dates_and_references_with_slashes_are_not_phone_numbers(text: str) -> None:
    assert extract_entities(text, "DE").phone_numbers == extract_entities(text, "US").phone_numbers == ()


def test_many_values_are_numbered_in_one_pass() -> None:
    # Given a log value listing 40,000 distinct addresses and a phone number (counting placeholders
    # anew for each value used to take minutes here)
    text = " ".join(f"u{i}@example.com" for i in range(40_000)) + " call 415-555-0132"
    # When it is masked
    masked = mask_personal_data(text)
    # Then each kind is numbered on its own, in order
    assert masked.text.startswith("<EMAIL_1> <EMAIL_2> ")
    assert masked.text.endswith("<EMAIL_40000> call <PHONE_1>")


@pytest.mark.parametrize(
    ("text", "region", "expected", "masked"),
    [
        ("call +1 415 555 0132 24/7", "US", "+14155550132", "call <PHONE_1> 24/7"),
        ("+1-415-555-0132 12 lines down", "US", "+14155550132", "<PHONE_1> 12 lines down"),
        ("+44 20 7946 0958 3 times", "US", "+442079460958", "<PHONE_1> 3 times"),
        ("ring 020 7946 0958 3 times", "GB", "+442079460958", "ring <PHONE_1> 3 times"),
    ],
)
def test_a_count_after_a_phone_number_is_no_part_of_it(text: str, region: str, expected: str, masked: str) -> None:
    # Given a phone number followed by a count, one space apart
    # When entities are extracted and the text masked
    phones = extract_entities(text, region).phone_numbers
    # Then the number has its country's length, and the count is left as written
    assert phones == (expected,)
    assert mask_personal_data(text, region).text == masked


def test_a_run_of_no_plausible_length_is_still_masked() -> None:
    # Given a German mobile in national format, read for the North American and UK rules of a log
    text = "callback 0151 23456789"
    # When it is masked, then it is masked whole, though no UK number has its length
    assert mask_personal_data(text, ["US", "GB"]).text == "callback <PHONE_1>"


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("my card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111", "CARD"),
        ("card 5555-5555-5555-4444 was declined", "5555-5555-5555-4444", "CARD"),
        ("amex 3782 822463 10005 declined", "3782 822463 10005", "CARD"),
        ("paid with ４１１１１１１１１１１１１１１１ today", "４１１１１１１１１１１１１１１１", "CARD"),
        ("debit from IBAN DE89 3704 0044 0532 0130 00 failed", "DE89 3704 0044 0532 0130 00", "IBAN"),
        # A capitalised word or a count after it is no part of it
        ("refund to DE89 3704 0044 0532 0130 00 ASAP", "DE89 3704 0044 0532 0130 00", "IBAN"),
        ("debited DE89370400440532013000 2 times", "DE89370400440532013000", "IBAN"),
        # Typed in lower case, it is the same account
        ("refund to de89 3704 0044 0532 0130 00 asap", "de89 3704 0044 0532 0130 00", "IBAN"),
        ("debited de89370400440532013000 2 times", "de89370400440532013000", "IBAN"),
        ("my iban is gb29 nwbk 6016 1331 9268 19 thanks", "gb29 nwbk 6016 1331 9268 19", "IBAN"),
        # A word of an IBAN's shape before it is not read as its start
        ("ref AB12 DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00", "IBAN"),
        ("ticket TK42 de89370400440532013000 bounced", "de89370400440532013000", "IBAN"),
        ("SSN 123-45-6789 on file", "123-45-6789", "SSN"),
        # Named as one, written with spaces, dots or no separator
        ("ssn 123 45 6789 on file", "123 45 6789", "SSN"),
        ("SSN: 123456789, thanks", "123456789", "SSN"),
        ("Social Security No. 123.45.6789", "123.45.6789", "SSN"),
        ("cvv 123 please", "123", "SECRET"),
        ("my PIN is 4821", "4821", "SECRET"),
        # A label or punctuation between the name and the value is no part of the value
        ("my PIN is: 4821", "4821", "SECRET"),
        ("PIN number: 4821", "4821", "SECRET"),
        ("SIM PIN number is 4821", "4821", "SECRET"),
        ("PIN no. 4821", "4821", "SECRET"),
        # A code written in groups is masked whole
        ("my OTP is 123 456.", "456", "SECRET"),
        ("PUK: 1234 5678, blocked", "5678", "SECRET"),
        ("password: hunter2!", "hunter2!", "SECRET"),
        ("password is blue-42", "blue-42", "SECRET"),
        ("password: sun-flower", "sun-flower", "SECRET"),
        # A passphrase stated with "is": its hyphens are its own, not a word's
        ("my password is correct-horse-battery-staple", "correct-horse-battery-staple", "SECRET"),
        ("mein Passwort ist Sommer-Sonne-Strand", "Sommer-Sonne-Strand", "SECRET"),
        ("the one-time code 482913 never came", "482913", "SECRET"),
        # Named in German, French or Spanish
        ("mein Passwort ist geheim123", "geheim123", "SECRET"),
        ("mon mot de passe : azerty12!", "azerty12!", "SECRET"),
        ("contraseña es abc123", "abc123", "SECRET"),
        # Named hyphenated, as German writes it, or with the word for number
        ("mein PIN-Code ist 4821", "4821", "SECRET"),
        ("PUK-Code: 12345678", "12345678", "SECRET"),
        ("die PIN-Nummer 4821 geht nicht", "4821", "SECRET"),
        ("PIN Nummer: 4821", "4821", "SECRET"),
        ("le numéro PIN est 4821", "4821", "SECRET"),
        # A pincode of a postal code's shape, but the PIN of a SIM or a card, or of a PIN's length
        ("my sim pincode is 560001", "560001", "SECRET"),
        ("card pincode: 482913", "482913", "SECRET"),
        ("my SIM's pincode is 482913", "482913", "SECRET"),
        ("the card’s pincode: 482913", "482913", "SECRET"),
        ("mijn pincode is 4821", "4821", "SECRET"),
        # Written "PIN code", of a postal code's shape but with no place named, or a place named
        # beside what a PIN unlocks, or in another sentence: a card's or a SIM's as likely
        ("PIN code 560001", "560001", "SECRET"),
        ("my new SIM PIN code is 1234", "1234", "SECRET"),
        ("No signal in my area and my card PIN code 482913 was blocked", "482913", "SECRET"),
        ("I moved to a new area. PIN code 482913 is refused", "482913", "SECRET"),
        ("No network in my area, PIN code 1234 asked at boot", "1234", "SECRET"),
        ("No signal in my area, my PIN code 482913 for the SIM is not accepted", "482913", "SECRET"),
    ],
)
def test_payment_cards_bank_accounts_and_secrets_are_masked_and_never_restored(
    text: str, value: str, kind: str
) -> None:
    # When text holding a value no model or log may see is masked
    masked = mask_personal_data(text)
    # Then the value is gone, a placeholder of its kind stands in, and restoring a model's answer
    # that quotes the placeholder does not bring the value back
    assert value not in masked.text and f"<{kind}_1>" in masked.text
    assert value not in masked.restore(f"Customer quoted <{kind}_1>.")


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123 shipped",  # 13 digits failing the Luhn check: not a card
        "my password is not working",  # words, not a secret
        "I forgot my PIN yesterday",
        "my password doesn't work and the OTP didn't arrive",
        "password isn't accepted, PIN-locked!",
        "SIM PIN blocked. The password (the new one) expired!",
        "mein Passwort funktioniert nicht, Passwort-Reset auch nicht",
        "le mot de passe ne marche pas",
        "PIN-Code vergessen, PUK-Nummer verloren",
        # A hyphenated word after the name is what the secret is for, not the secret
        "le mot de passe Wi-Fi ne marche plus",
        "mein Passwort E-Mail-Konto ist gesperrt",
        "IBAN DE00 3704 0044 0532 0130 00",  # failing its check digits
        "iban de00 3704 0044 0532 0130 00",
        # Words after two letters and two digits that pass the check digits: no country's IBAN
        # ("fw"), or a country's length but words, not digits
        "fw76 update failed again",
        "nl49 routers offline",
        # Nine digits grouped as an SSN but not named as one
        "order 123 45 6789 arrived",
        "SSN last four 6789",
        # An Indian postal code (PIN, Postal Index Number) is where the customer is, not a secret
        "no signal at pincode 560001 since monday",
        "Pincode: 110 001.",
        # Written "PIN code" too, in a sentence that names a place
        "No network in my area, PIN code 560034 since Monday",
        "Address: 12 MG Road, Bengaluru, Pin Code: 560001",
        "I live in Koramangala, pin-code 560 034.",
        "Address: 12 MG Road, Pin Code: 560001, phone not reachable",
        # Handset and SIM numbers pass the Luhn check too, and an agent needs them
        "IMEI 352099001761481 keeps dropping calls",
        "IMEI: 35-209900-176148-1",
        "ICCID 8944110012345678901 will not activate",
    ],
)
def test_numbers_and_words_that_only_look_sensitive_are_kept(text: str) -> None:
    assert mask_personal_data(text).text == text


def test_standards_diseases_and_pins_are_not_error_codes() -> None:
    # Given a ticket with one real error code among look-alikes
    entities = extract_entities("NET-500 since COVID-19; ISO-8859 text per RFC-2616; PIN-1234")
    # Then only the error code is reported (a PIN is masked, not reported)
    assert entities.error_codes == ("NET-500",)


def test_a_placeholder_the_text_already_holds_is_not_used_for_a_value() -> None:
    # Given a ticket that quotes a placeholder literally, beside a real address
    text = "Your form showed <EMAIL_1> instead of my address jane@example.com"
    # When it is masked, and a model's answer quoting both is restored
    masked = mask_personal_data(text)
    restored = masked.restore(masked.text)
    # Then the literal placeholder stays as written, and only the address comes back as itself
    assert restored == text


def test_two_phone_numbers_one_space_apart_are_not_read_as_a_card() -> None:
    # Given two North American numbers one space apart, whose first 16 digits pass the Luhn check
    text = "call 415 555 0107 415 555 0199 today"
    # When it is masked
    masked = mask_personal_data(text)
    # Then both are phone numbers, restored where a model's answer quotes them
    assert masked.text == "call <PHONE_1> <PHONE_2> today"
    assert masked.restore("<PHONE_2>") == "415 555 0199"


def test_a_card_number_given_as_a_pin_is_masked_whole() -> None:
    # Given a card number that follows a secret's name, so that both read it from its first digit
    text = "PIN 4111 1111 1111 1111 please"
    # When it is masked, then no digit of it is left
    assert mask_personal_data(text).text == "PIN <CARD_1> please"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("メールはjane@example.comです", "メールは<EMAIL_1>です"),
        ("请联系我jane@example.com谢谢", "请联系我<EMAIL_1>谢谢"),
        ("이메일은jane@example.com입니다", "이메일은<EMAIL_1>입니다"),
    ],
)
def test_an_address_in_text_written_without_spaces_is_the_address_alone(text: str, masked: str) -> None:
    # Given an address written straight after and before words of a script that uses no spaces
    # When entities are extracted and the text masked
    # Then the address is the address alone, and the words around it are kept
    assert extract_entities(text).emails == ("jane@example.com",)
    assert mask_personal_data(text).text == masked


@pytest.mark.parametrize(
    "text",
    [
        "The line drops at some point in the evening",
        "It disconnects at which point it reboots",
        "Internet stopped working at that point in time",
        "The router reboots at one point at night",
        "Error 1042 at portal dot vodafone dot de",
    ],
)
def test_words_and_numbers_around_a_bare_at_that_name_no_address(text: str) -> None:
    # When a ticket says when or where its fault happens with a bare "at"
    masked = mask_personal_data(text)
    # Then the sentence reaches the model as written
    assert masked.text == text


def test_a_long_dotted_run_before_a_second_at_sign_is_kept_as_written() -> None:
    # Given a ticket of the longest description, an "@" then a dotted run up to another "@" (a paste
    # of a log, or a text made to stall the masking: each shorter domain was once tried in turn)
    text = "x@" + ".".join(["a"] * 9_000) + "@"
    # When it is masked, Then no address is found in it, and it comes back whole
    assert mask_personal_data(text).text == text
