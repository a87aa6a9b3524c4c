"""Entity extraction from ticket text: telecom identifiers, phone numbers and money.

Regular expressions rather than a NER model: these entities have fixed shapes, and the domain must
stay free of heavy dependencies. Phone numbers are normalised to E.164 for the default region.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from domain.models import ExtractedEntities, Money

# What a count is of, after a number: "account 12345 GB used", "my account 100000 Mbps plan", "Konto
# 50000 Minuten" name a volume, not the account. Word units only in the plural ("account 12345 line 2
# is dead" names the account), and of the French octets only "Go": "Mo" is also a German Monday.
# "SMS" is its own plural, and as often names a kind ("account 12345678 SMS alerts", "SMS-Code"):
# a count only where no other word follows it, or one saying how many are left, used or included.
_SMS_COUNT = (
    r"sms\b(?!-\w|\s+(?!(?:left|used|remaining|sent|received|included|per|each|übrig|verbraucht|gesendet"
    r"|inklusive|pro|restants?|utilisés|envoyés|inclus|par)\b)[^\W\d_])"
)
_UNIT = (
    r"\s?(?:[kmgt]i?b(?:ytes?|its?)?(?:/s|ps)?|(?:kilo|mega|giga|tera)(?:bytes|bits|octets)|gigs|(?-i:Go)"
    r"|mins?|minutes|minuten|secs|seconds|sekunden|secondes|hrs|hours|stunden|heures|days|tage|jours"
    r"|weeks|wochen|semaines|months|monate|mois|years|jahre|ans"
    rf"|{_SMS_COUNT}|texts|messages|nachrichten|calls|anrufe|appels|lines|leitungen|lignes|users|nutzer|points|punkte)\b"
)
_ACCOUNT = re.compile(
    r"\bACCT?(?:[-_]|(?P<spaced> ))?(?P<digits>\d{3,12})\b(?(spaced)(?!" + _UNIT + "))", re.IGNORECASE
)
# An account number named as one rather than written ACC-48213: "account number 12345678", "acct no.
# 987654321", "A/C # 1234 5678", "Kundennummer 12345678", "mein Konto 12345678", "numéro de compte
# 12345678", "mon compte 12345678". Only after its
# name, so amounts, dates and the ticket, order and invoice references routing reads stay as written;
# five digits or more, in one run or in short groups (1234 5678 90: after a long run, "12" is a count,
# but a hyphen joins a branch or check digit: 12345-678, 123456-7; a run of five or six may lead
# groups of three or four, as a German customer number is printed: 12345 678 90, but not a count, a
# phone number or a date: "account 123456 20 times", "Kundennummer 12345 030 1234567"),
# not followed by a currency ("account 12500 EUR") or a unit.
_NAMED_ACCOUNT = re.compile(
    r"(?:\b(?:customer\s+)?(?:account|acct|a/c)(?:\s*(?:number|num|no|nr|id)\b\.?)?"
    r"|\bcustomer\s*(?:number|no\b\.?|nr\.?|id)(?!\w)"
    r"|\b(?:kunden|konto)(?:nummer|[-\s]?nr\.?)(?!\w)|\b(?:kunden)?konto\b|\bcompte(?:\s+client)?\b"
    r"|\bnum[ée]ro\s+(?:de\s+)?(?:compte|client)\b|\bn[°o]\.?\s*(?:de\s+)?(?:compte|client)\b)"
    r"(?:\s*(?:is|was|ist|war|lautet|est)\b)?(?:\s*[:=#-])?\s*"
    # An ISO date has the shape of a grouped number: "Account: 2026-11-03 double charge" names when.
    r"(?!(?:19|20)\d\d-[01]\d-[0-3]\d(?![\d-]))"
    r"(?P<account>\d{5,6}(?: \d{3,4}){1,2}(?: \d{2})?(?![ -]?\d)|\d{5,}(?:-\d{1,8}){0,2}|\d{3,4}(?:[ -]\d{2,8}){1,3})(?![\w%€£$]|[.,/-]\d|\s?(?:eur|usd|gbp|chf|euros?|dollars?|pounds)\b|"
    + _UNIT
    + ")",
    re.IGNORECASE,
)
_NAMED_ACCOUNT_DIGITS = range(5, 21)

# The scans below are pure functions of one text that extraction and masking each need several times
# (an account's check reads the card/secret scan, `_scrub` reads the e-mail scan, masking reads both
# and extraction may just have read the same text), and they are most of their time. Kept for the last
# few texts only (a Lambda routes one ticket at a time, and a long log value is soon let go), and
# returned as tuples: a cached result is every caller's.
_per_text = functools.lru_cache(maxsize=4)


@_per_text
def _named_accounts(text: str) -> tuple[re.Match[str], ...]:
    found = tuple(
        m for m in _NAMED_ACCOUNT.finditer(text) if len(_DIGIT.findall(m.group("account"))) in _NAMED_ACCOUNT_DIGITS
    )
    if not found:
        return found
    # A card number or a secret given as the account ("account number is 4111 1111 1111 1111") is
    # masked as what it is, and never reported, stored or restored as an account.
    sensitive = _sensitive_spans(text)
    return tuple(
        m
        for m in found
        if not any(m.start("account") < end and start < m.end("account") for start, end, _ in sensitive)
    )


_SERVICE = re.compile(r"\bSVC[-_ ]?(\d{2,8})\b", re.IGNORECASE)
# Upper-case prefix, dash, digits: NET-500, ERR-1042, DSL-651. Account, service and reference numbers
# share the shape, so they are excluded by prefix; a further "-digits" group (INV-2026-11834) marks a
# reference number, whatever its prefix.
_ERROR_CODE = re.compile(r"\b([A-Z][A-Z0-9]{1,7})-(\d{2,6})\b(?!-\d)")
_NOT_ERROR_PREFIXES = frozenset(
    {"ACC", "ACCT", "SVC", "EV", "TKT", "TICKET", "CUST", "INC", "CASE", "REQ"}
    | {"INV", "INVOICE", "PAY", "ORD", "ORDER", "REF", "CN", "OUT", "PO", "RMA", "SR", "QUOTE"}
    # Standards and diseases are not faults, and a PIN is a secret to mask, not an error to report.
    | {"ISO", "RFC", "IEC", "COVID", "PIN", "PUK", "CVV", "CVC", "OTP", "SSN"}
)
# Starts only where a run of address characters does (its leading dots or dashes are no part of the
# address): a match may not start inside a run, since a long run with no "@" (a.a.a..., 1-1-1...) was
# otherwise read to its end from each of its letters, quadratic in its length. Letters are any
# script's: jürgen@müller.de is an address, and was masked as "jü<EMAIL_1>" or not at all. But those
# of scripts written without spaces (Chinese, Japanese, Korean, Thai...): the words before and after
# an address ("メールはjane@example.comです") were read as part of it, masked and reported with it.
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
)
_ADDRESS_CHAR = rf"[^\W{_UNSPACED}]"
_EMAIL = re.compile(
    rf"(?<![.%+-])(?<!{_ADDRESS_CHAR})[.%+-]*+(?P<email>(?:{_ADDRESS_CHAR}|[.%+-])++@(?:{_ADDRESS_CHAR}|[.-])+"
    rf"\.[^\W\d_{_UNSPACED}]{{2,}}(?!{_ADDRESS_CHAR}))"
)

# An address written to get past a spam filter: "jane(at)example.com", "jane [at] example [dot] com",
# "jane at example dot com", "jane@example[.]com", in German and French too ("(ät)", "(punkt)",
# "arobase", "point"). The "at" and "dot" in brackets, or "@" with "dot" in words, name an address
# whatever the domain. Both in bare words name one only with a domain ending that exists and a word
# "dot": "look at speedtest.net" and "I'm at home, dot com" are a site and words.
_AT_WORDS = r"(?:at|ät|arobase)"
_DOT_WORDS = r"(?:dot|punkt|point)"
_OPEN, _CLOSE = r"[(\[{<]\s*", r"\s*[)\]}>]"
_DISGUISED_EMAIL = re.compile(
    # Not from within a word's contraction: "I'm at home dot com" names no "m".
    rf"(?<![\w.%+'’-])(?P<email>[\w.%+-]*+(?<=\w)"
    rf"(?:(?P<marked_at>\s*{_OPEN}{_AT_WORDS}{_CLOSE}\s*|@)|\s+(?P<spoken_at>{_AT_WORDS})\s+)"
    # Possessive: given back a part at a time, each shorter domain would be tested against the
    # lookahead below, which reads to the text's end, and a long dotted run took quadratic time.
    rf"(?P<domain>\w[\w-]*+(?:(?:\.|\s*{_OPEN}(?:{_DOT_WORDS}|\.){_CLOSE}\s*|\s+{_DOT_WORDS}\s+)\w[\w-]*+)++))"
    r"(?![\w.-]*@)",
    re.IGNORECASE,
)
_SPOKEN_DOT = re.compile(rf"\s+{_DOT_WORDS}\s+", re.IGNORECASE)
_MARKED_DOT = re.compile(rf"\s*{_OPEN}(?:{_DOT_WORDS}|\.){_CLOSE}\s*", re.IGNORECASE)
_DOMAIN_DOT = re.compile(rf"\.|{_SPOKEN_DOT.pattern}|{_MARKED_DOT.pattern}", re.IGNORECASE)
_DOMAIN_ENDINGS = frozenset({
    "com", "net", "org", "info", "biz", "io", "co", "eu", "uk", "de", "fr", "ch", "at", "be", "nl", "lu",
    "es", "it", "pt", "ie", "in", "us", "ca", "au", "nz", "edu", "gov",
})  # fmt: skip


# Words that stand before a bare "at" in a sentence, not as an address's name: "I am at home dot com",
# and where a site is named ("I tested at fast dot com", "the page at netflix dot com", "speed test at
# speedtest dot net"): a site is no personal data, and the model needs it.
_NOT_A_NAME = frozenset({
    "i", "am", "is", "are", "was", "were", "be", "me", "us", "you", "we", "it", "they", "them", "him", "her",
    "home", "work",
    "test", "tests", "tested", "testing", "check", "checked", "checking", "look", "looked", "looking",
    "go", "went", "visit", "visited", "logged", "login", "signed", "registered", "ordered", "bought",
    "available", "online", "posted", "listed", "hosted", "measured", "streaming", "shown", "says", "said",
    "page", "site", "website", "webpage", "portal", "link", "url", "app", "shop", "store", "speed", "speeds",
    "result", "results", "tool", "forum", "account", "order", "ticket", "mbps", "mbit", "kbps", "gbps",
})  # fmt: skip
# A site's host names no mailbox: "reported at status dot vodafone dot de", "at www dot example dot com".
_SITE_HOSTS = frozenset({"www", "status", "portal", "login", "shop", "store", "help", "app", "apps", "play", "my"})


def _names_a_site(domain: str) -> bool:
    # Only as the host of a longer name: my.com is a mail provider, my.vodafone.de a customer portal.
    labels = _DOMAIN_DOT.split(domain)
    return len(labels) > 2 and labels[0].casefold() in _SITE_HOSTS


# A word after one of these is a thing, not an address's name: "the site at", "a test at", "our shop at".
_DETERMINERS = frozenset({"the", "a", "an", "this", "these", "those", "our", "your", "their", "its"})
_LAST_WORD = re.compile(r"(\w+)\W*$")


def _after_determiner(text: str, start: int) -> bool:
    before = _LAST_WORD.search(text, max(0, start - 40), start)
    return before is not None and before.group(1).casefold() in _DETERMINERS


def _spoken_dots_fit(at: str, domain: str) -> bool:
    """Whether the words for a dot fit the word for "at": after an English "at", "point" is a word of
    the sentence ("at some point in the evening", "at which point it reboots"), a dot only after the
    French "arobase"."""
    return at.casefold() != "at" or all(dot.strip().casefold() != "point" for dot in _SPOKEN_DOT.findall(domain))


@_per_text
def _disguised_emails(text: str) -> tuple[tuple[int, int], ...]:
    found: list[tuple[int, int]] = []
    pos = 0
    while m := _DISGUISED_EMAIL.search(text, pos):
        domain, marked_at = m.group("domain"), m.group("marked_at")
        ending = _DOMAIN_DOT.split(domain)[-1]
        spoken_dot = _SPOKEN_DOT.search(domain) is not None
        if not ending.isalpha() or len(ending) < 2:
            disguised = False
        elif marked_at == "@":  # a plain address is found as one
            disguised = spoken_dot or _MARKED_DOT.search(domain) is not None
        elif marked_at is None:
            local = m.group("email").split(None, 1)[0]
            disguised = (
                spoken_dot
                and ending.casefold() in _DOMAIN_ENDINGS
                and local.casefold() not in _NOT_A_NAME
                and not _after_determiner(text, m.start("email"))
                and not _names_a_site(domain)
                # A number before a bare "at" is what happened there: "error 1042 at portal dot
                # vodafone dot de" keeps the error code routing reads.
                and not local.isdigit()
                and _spoken_dots_fit(m.group("spoken_at"), domain)
            )
        else:
            disguised = True
        if disguised:
            found.append(m.span("email"))
            pos = m.end("email")
        else:
            # Words read as a domain are not skipped: an address may start among them.
            pos = m.start("email") + 1
    return tuple(found)


# A phone-shaped run: optional +/00 prefix, digits with spaces, dots, dashes or a parenthesised
# area code between them. Digit count and region rules then decide whether it is a number. After a dot
# only where a digit is not before it: inside 1.2.3.4 or 12.50 no number starts, after "Tel." one does.
# A slash only after a trunk-prefixed area code, as German numbers are written (030/1234567): elsewhere
# it is a date's or a reference's (2026/123456).
_PHONE = re.compile(
    r"(?<![\w$€£,/-])(?<!\d\.)"
    r"(?:(?:\+|00)?\(?\d[\d().\s-]{6,18}\d|\(?0\d{1,5}\)?\s?/\s?\d[\d\s-]{2,12}\d)"
    r"(?![\w%€£$]|[.,]\d)"
)

# Dates and times are the commonest phone look-alikes in tickets.
_DATE_OR_TIME = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?Z?)?|\b\d{1,2}:\d{2}(?::\d{2})?\b"
)

# Digits of other scripts (Arabic-Indic ٤١٥...), the full-width forms an East Asian keyboard types
# (ＡＣＣ-４８２１３, ＋４４) and the dashes a word processor puts for "-" (415–555–0132): read as the ASCII
# they stand for, or such a number is neither found nor masked. Invisible format characters (zero-width
# spaces, soft hyphens, the bidi marks of right-to-left text) read as a space, a separator a number may have.
_FOLDED = re.compile(
    r"[\uff01-\uff5e\u2010-\u2015\u2212\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
    r"|(?![0-9])\d"
)
_FULLWIDTH_OFFSET = 0xFEE0


def _ascii_char(match: re.Match[str]) -> str:
    char = match.group(0)
    if unicodedata.category(char) == "Cf":
        return " "
    if "\u2010" <= char <= "\u2015" or char == "\u2212":
        return "-"
    if "\uff01" <= char <= "\uff5e":
        return chr(ord(char) - _FULLWIDTH_OFFSET)
    return str(unicodedata.decimal(char))


def _fold(text: str) -> str:
    """The text with those characters in ASCII, one for one: offsets into it are offsets into the text."""
    return text if text.isascii() else _FOLDED.sub(_ascii_char, text)


# Replaces each character of what `_scrub` removes: offsets stay those of the original text (masking
# replaces spans of it), and a phone candidate cannot run across it as it could across a space.
_BLANK = "\0"
_DIGIT = re.compile(r"\d")

# Values a customer should never have typed, masked wherever they are and never restored into what a
# model writes back: a payment card number (13 to 19 digits, grouped or not, that passes the Luhn
# check), an IBAN (that passes its mod-97 check), a US social security number, and a secret named as
# one ("PIN 4821", "password: hunter2", "CVV 123"). A secret must hold a digit or a symbol, so that
# "my password is not working" keeps its words.
_CARD = re.compile(r"(?<![\w.,/+-])\d(?:[ -]?\d){12,18}(?![\w]|[.,/-]\d)")
# Any case: typed in lower case ("de89 3704 0044 0532 0130 00") an IBAN is as much a bank account.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b")
# The length of each country's IBANs (SWIFT's IBAN registry). Lower-case words after "xx12" pass the
# check digits one time in 97: one in lower case must also have a country's exact length and a BBAN of
# mostly digits, which words are not.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w]|-\d)")
# Named as one, a social security number is one however it is written: "SSN 123 45 6789", "social
# security number: 123456789" (unnamed, nine digits or 3-2-4 spaced are anything at all).
_NAMED_SSN = re.compile(
    r"\b(?:ssn|social\s+security(?:\s+(?:number|no|nr|#))?)\b\.?(?:\s*(?:is|was)\b)?\s*[:#=]?\s*"
    r"(?P<ssn>\d{3}(?P<gap>[ .]?)\d{2}(?P=gap)\d{4})(?![\w]|[-.]\d)",
    re.IGNORECASE,
)
_SECRET = re.compile(
    # German writes the code's name hyphenated ("PIN-Code", "PUK-Nummer"), English often too.
    r"\b(?P<name>pin(?:[\s-]*code)?|passcode|password|passwd|cvv2?|cvc|puk(?:[\s-]*code)?|otp"
    r"|security\s+code|verification\s+code"
    r"|one[-\s]time\s+(?:pass)?code"
    # The same named in the languages of the regions served (German, French) and their neighbours'.
    r"|passwort|kennwort|geheimzahl|mot\s+de\s+passe|code\s+secret|contrase[ñn]a|wachtwoord|senha)\b"
    r"(?:[\s-]*(?:number|nummer|num[ée]ro)\b|\s*(?:no\.|nr\.?))?(?:\s*(?P<verb>is|was|ist|war|est|es|era|é)\b)?(?:\s*(?P<sep>[:=#-]))?\s*"
    # A code is often written in groups ("OTP 123 456", "PUK: 1234 5678"), each of them secret.
    r"(?P<secret>(?:\d{3,8} ){1,3}\d{3,8}(?![^\s,;.!?)])|[^\s,;:=#][^\s,;]{2,63})",
    re.IGNORECASE,
)
_SECRET_SHAPED = re.compile(r"[\d!-/:-@\[-`{-~]")
# Written in a sentence rather than after a colon, a word's apostrophe ("my password doesn't work")
# or hyphen ("le mot de passe Wi-Fi", "Passwort E-Mail"), a sentence's closing mark ("PIN blocked!")
# or an opening bracket ("password (the new one)") do not make it a secret: masked, never restored,
# those words were lost to the model and the decision. After "is" the hyphen is the value's own:
# "my password is correct-horse-battery-staple" states a passphrase.
_CONTRACTION = re.compile(r"(?<=[^\W\d_])['-](?=[^\W\d_])")
_APOSTROPHE = re.compile(r"(?<=[^\W\d_])'(?=[^\W\d_])")


# An Indian postal code is a "pincode" (PIN, Postal Index Number): six digits, the first not 0, also
# written 560 001. Masked as a secret, the area of a no-signal ticket was lost to the model. Not
# after a word naming what a secret PIN unlocks ("SIM pincode 123456", as a Dutch speaker writes PIN).
# Written "PIN code" it is as often a card's or a SIM's, so it is read as a postal code only in a
# sentence that speaks of a place ("no network in my area, PIN code 560034", "Address: 12 MG Road,
# Bengaluru, Pin Code: 560001") and of nothing a PIN unlocks: alone, "PIN code 560001" stays masked.
_POSTAL_PINCODE = re.compile(r"[1-9]\d{5}|[1-9]\d{2} \d{3}")
_PIN_OWNERS = r"(?:sim|card|atm|bank(?:ing)?|debit|credit|phone|handset|voicemail|app|account|login)"
_PIN_OF = re.compile(
    # The owner's 's too: "my SIM's pincode is 482913" is the SIM's.
    rf"\b{_PIN_OWNERS}(?:['’]s)?\W{{0,3}}$",
    re.IGNORECASE,
)
_PIN_OWNER = re.compile(rf"\b{_PIN_OWNERS}", re.IGNORECASE)
_PLACE = re.compile(
    r"\b(?:area|address|locality|city|town|village|district|postal|located|liv(?:e|ing)\s+(?:in|at)|road"
    r"|street|nagar|colony|sector|layout)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?\n]")


def _is_postal_pincode(match: re.Match[str], value: str) -> bool:
    name = re.sub(r"[\s-]+", " ", match.group("name").casefold())
    if (
        name not in ("pincode", "pin code")
        or _POSTAL_PINCODE.fullmatch(value.rstrip(".!?)")) is None
        or _PIN_OF.search(match.string, max(0, match.start() - 16), match.start())
    ):
        return False
    if name == "pincode":
        return True
    before = _SENTENCE_END.split(match.string[max(0, match.start() - 80) : match.start()])[-1]
    # What the PIN unlocks may come after it too ("PIN code 482913 for the SIM is not accepted"), but
    # not in the next item of an address ("Pin Code: 560001, phone 98450 12345").
    after = re.split(r"[,;.!?\n]", match.string[match.end() : match.end() + 80])[0]
    return bool(_PLACE.search(before)) and not _PIN_OWNER.search(before + " " + after)


def _is_secret(match: re.Match[str]) -> bool:
    value = match.group("secret")
    if _is_postal_pincode(match, value):
        return False
    if match.group("sep") in (None, "-"):
        joiners = _APOSTROPHE if match.group("verb") else _CONTRACTION
        value = joiners.sub("", value).lstrip("(").rstrip(".!?)")
    return bool(_SECRET_SHAPED.search(value))


_NEVER_RESTORED = frozenset({"CARD", "IBAN", "SSN", "SECRET"})
_PLACEHOLDER = re.compile(r"<[A-Z]+_\d+>")


# The issuer prefixes a card number of each length may have. A Luhn check alone also passes every
# IMEI (15 digits, 35..., 86..., 01...) and ICCID (19-20 digits, 89...): the handset and SIM numbers
# a support agent needs, not secrets, and masked as cards they were never restored. 15 digits are
# American Express's only, 14 Diners Club's; other cards start 2-6 (Mastercard, Visa, Discover,
# Maestro, UnionPay, JCB) or 81 (UnionPay).
_CARD_PREFIXES = {15: ("34", "37"), 14: ("30", "36", "38", "39")}
_CARD_FIRST_DIGITS = ("2", "3", "4", "5", "6", "81")


def _is_card_number(groups: list[str]) -> bool:
    # Written in groups, a card number's are of four digits or more but for its last (4-4-4-4,
    # 4-6-5, 4-4-4-4-3); groups of three are phone numbers, and two of them one space apart
    # ("415 555 0107 415 555 0199") passed the Luhn check one time in ten and were masked as a card.
    if any(len(group) < 4 for group in groups[:-1]):
        return False
    digits = "".join(groups)
    prefixes = _CARD_PREFIXES.get(len(digits), _CARD_FIRST_DIGITS)
    return digits.startswith(prefixes) and _luhn_valid(digits)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    if not compact.isupper():
        bban = compact[4:]
        if _IBAN_LENGTHS.get(compact[:2].upper()) != len(compact) or 2 * sum(c.isdigit() for c in bban) < len(bban):
            return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_span(match: re.Match[str]) -> tuple[int, int, str] | None:
    """The IBAN a match starts with: a word or a count after it ("... 0130 00 ASAP", "... 2 times")
    reads as more of its groups, and with them the whole failed its check and went unmasked."""
    value = match.group(0)
    ends = [len(value), *(i for i in range(len(value) - 1, 0, -1) if value[i] == " ")]
    for end in ends:
        # No country's IBAN is shorter than 15 characters (Norway's).
        if len(value[:end].replace(" ", "")) >= 15 and _iban_valid(value[:end]):
            return match.start(), match.start() + end, "IBAN"
    return None


def _iban_spans(folded: str) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []
    pos = 0
    while match := _IBAN.search(folded, pos):
        span = _iban_span(match)
        if span:
            found.append(span)
        # A word of its shape just before an IBAN ("ref AB12 DE89 3704 ...") read the IBAN as its own
        # groups and, failing the check, hid it: the next word may start one. A match is at most 64
        # characters, so this stays linear.
        pos = span[1] if span else match.start() + 1
    return found


@_per_text
def _sensitive_spans(folded: str) -> tuple[tuple[int, int, str], ...]:
    spans = [
        (m.start(), m.end(), "CARD") for m in _CARD.finditer(folded) if _is_card_number(re.split(r"[ -]", m.group(0)))
    ]
    spans += _iban_spans(folded)
    spans += [(m.start(), m.end(), "SSN") for m in _SSN.finditer(folded)]
    spans += [(m.start("ssn"), m.end("ssn"), "SSN") for m in _NAMED_SSN.finditer(folded)]
    spans += [(m.start("secret"), m.end("secret"), "SECRET") for m in _SECRET.finditer(folded) if _is_secret(m)]
    return tuple(spans)


_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCY_CODES = "USD|EUR|GBP|CAD|AUD|CHF|INR|SEK|NOK|DKK|PLN|ZAR|NZD|JPY"
_CURRENCY_WORDS = {"dollars": "USD", "dollar": "USD", "euros": "EUR", "euro": "EUR", "pounds": "GBP"}
# Thousands separators: dot, comma, space, and the Swiss apostrophe (1'234.50). At most four groups
# (15 digits, more than any amount kept): an amount may start after any space, so with no bound each
# number of a long space-separated table was read to the table's end, quadratic in its length.
# A fraction of one (a per-minute or per-MB rate: $0.015, €0,0125) may have more decimals.
_NUMBER = r"0[.,]\d+|\d{1,3}(?:[.,\s'’]\d{3}){0,4}(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MONEY = re.compile(
    rf"(?P<sym>[$€£])\s?(?P<n1>{_NUMBER})"
    rf"|\b(?P<code1>{_CURRENCY_CODES})\s?(?P<n2>{_NUMBER})\b"
    rf"|(?<![\w.,#])(?P<n3>{_NUMBER})\s?(?:(?P<code2>{_CURRENCY_CODES})\b|(?P<sym2>[€£$])|(?P<word>dollars?|euros?|pounds)\b)",
    re.IGNORECASE,
)
# More integer digits than any telecom bill has: an identifier, not money (and DynamoDB stores 38 digits at most).
_MAX_AMOUNT_INTEGER_DIGITS = 12
# More decimals than any per-unit rate has: not money either. Unbounded, "$0.1111..." with 40 of
# them could not be stored (DynamoDB keeps 38 significant digits and nothing below 1E-130), and the
# decision holding it failed to save.
_MAX_AMOUNT_DECIMALS = 6

# Country calling code and national trunk prefix for the regions we normalise national numbers of.
_REGIONS: dict[str, tuple[str, str | None]] = {
    "US": ("1", None),
    "CA": ("1", None),
    "GB": ("44", "0"),
    "DE": ("49", "0"),
    "FR": ("33", "0"),
    "IE": ("353", "0"),
    "AU": ("61", "0"),
}
# Digits after the country code, for the countries whose lengths are fixed or nearly so (Germany's
# vary too much to say).
_NATIONAL_DIGITS = {"1": (10, 10), "44": (9, 10), "33": (9, 9), "353": (7, 9), "61": (9, 9)}
# The regions a deployment may read national numbers as (its ROUTER_DEFAULT_REGION).
PHONE_REGIONS = tuple(_REGIONS)
_UK_NATIONAL_PREFIXES = frozenset({"01", "02", "03", "07", "08"})


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def normalise_phone(raw: str, default_region: str = "US") -> str | None:
    """E.164 for a phone number as people write it, or None when it is not a plausible number."""
    stripped = raw.strip()
    if stripped.startswith(("+", "00")):
        # "+44 (0)20 ...": the trunk prefix is only dialled nationally, never after the country code.
        stripped = stripped.replace("(0)", "")
    digits = re.sub(r"\D", "", stripped)
    if stripped.startswith("+"):
        return f"+{digits}" if 8 <= len(digits) <= 15 else None
    if stripped.startswith("00"):
        rest = digits[2:]
        return f"+{rest}" if 8 <= len(rest) <= 15 else None
    country_code, trunk = _REGIONS.get(default_region.upper(), _REGIONS["US"])
    if country_code == "1":
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        if len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789":
            return f"+1{digits}"
        # A UK national number quoted to a North American desk: still worth keeping. Only the UK's
        # shape, so that references and other countries' national numbers do not become UK phones.
        if len(digits) == 11 and digits[:2] in _UK_NATIONAL_PREFIXES:
            return f"+44{digits[1:]}"
        return None
    if trunk and digits.startswith(trunk) and 9 <= len(digits) <= 12:
        return f"+{country_code}{digits[len(trunk) :]}"
    return None


def _parse_amount(text: str) -> Decimal | None:
    compact = re.sub(r"[\s'’]", "", text)
    if re.fullmatch(r"0[.,]\d+", compact):  # no thousands start with 0: 0.015 is a rate, not 15
        return Decimal(compact.replace(",", "."))
    last_comma, last_dot = compact.rfind(","), compact.rfind(".")
    decimal_sep = None
    if max(last_comma, last_dot) >= 0:
        last = max(last_comma, last_dot)
        # Two or fewer digits after the last separator: it is the decimal one (49,99 or 49.99).
        if len(compact) - last - 1 <= 2:
            decimal_sep = compact[last]
    if decimal_sep:
        whole, frac = compact.rsplit(decimal_sep, 1)
        normalised = re.sub(r"[.,]", "", whole) + "." + frac
    else:
        normalised = re.sub(r"[.,]", "", compact)
    try:
        return Decimal(normalised)
    except InvalidOperation:
        return None


def _extract_money(text: str) -> list[Money]:
    found: list[Money] = []
    for match in _MONEY.finditer(text):
        groups = match.groupdict()
        number = groups["n1"] or groups["n2"] or groups["n3"]
        if groups["sym"]:
            currency = _CURRENCY_SYMBOLS[groups["sym"]]
        elif groups["code1"] or groups["code2"]:
            currency = (groups["code1"] or groups["code2"]).upper()
        elif groups["sym2"]:
            currency = _CURRENCY_SYMBOLS[groups["sym2"]]
        else:
            currency = _CURRENCY_WORDS[groups["word"].lower()]
        amount = _parse_amount(number.strip())
        if (
            amount is not None
            and amount.adjusted() < _MAX_AMOUNT_INTEGER_DIGITS
            and -int(amount.as_tuple().exponent) <= _MAX_AMOUNT_DECIMALS
        ):
            found.append(Money(amount=amount, currency=currency))
    return list(dict.fromkeys(found))


@_per_text
def _emails(text: str) -> tuple[re.Match[str], ...]:
    return tuple(_EMAIL.finditer(text))


def _blanked(text: str, spans: Iterable[tuple[int, int]]) -> str:
    pieces, done = [], 0
    for start, end in spans:
        pieces += [text[done:start], _BLANK * (end - start)]
        done = end
    return "".join(pieces) + text[done:]


@_per_text
def _without_emails(text: str) -> str:
    """The text with its addresses, plain or disguised, blanked out."""
    text = _blanked(text, (m.span() for m in _emails(text)))
    return _blanked(text, _disguised_emails(text))


@_per_text
def _scrub(text: str) -> str:
    """The text with emails, identifiers, dates and times blanked out, so their digits are not reused."""
    text = _without_emails(text)
    text = _blanked(text, (m.span("account") for m in _named_accounts(text)))
    for pattern in (_ACCOUNT, _SERVICE, _ERROR_CODE, _DATE_OR_TIME):
        text = pattern.sub(lambda m: _BLANK * len(m.group(0)), text)
    return text


def _as_phone(candidate: str, default_region: str) -> str | None:
    # Version numbers and short references have phone-like shapes; require enough digits.
    if sum(ch.isdigit() for ch in candidate) < 9:
        return None
    return normalise_phone(candidate, default_region)


def _plausible_length(e164: str) -> bool:
    """Whether the digits after the country code are as many as that country's numbers have, where
    known: "+1 415 555 0132 2 times" is then no 12-digit number."""
    for country_code, (shortest, longest) in _NATIONAL_DIGITS.items():
        if e164.startswith(f"+{country_code}"):
            return shortest <= len(e164) - 1 - len(country_code) <= longest
    return True


def _phone_spans(scrubbed: str, default_region: str) -> list[tuple[int, int, str]]:
    """(start, end, E.164) of each phone number in text that went through `_scrub`."""
    found: list[tuple[int, int, str]] = []
    pos = 0
    while match := _PHONE.search(scrubbed, pos):
        start, end = match.span()
        candidate = match.group(0)
        normalised = _as_phone(candidate, default_region)
        if normalised is None or not _plausible_length(normalised):
            # Numbers one space apart read as one over-long run ("07700 900123 07700 900456"), and so
            # does a count after a number ("+44 20 7946 0958 3 times"): keep the longest leading part
            # that is a number of its country's length, else (no run unmasked) one of any length.
            # Failing both, a whole run of an implausible length is still kept: it is masked.
            fallback: tuple[str, int] | None = None
            for gap in reversed([m.start() for m in re.finditer(r"\s", candidate)]):
                prefix = candidate[:gap].rstrip()
                shorter = _as_phone(prefix, default_region)
                if shorter and _plausible_length(shorter):
                    normalised, end = shorter, start + len(prefix)
                    break
                if shorter and fallback is None:
                    fallback = (shorter, start + len(prefix))
            else:
                if normalised is None and fallback is not None:
                    normalised, end = fallback
        if normalised:
            found.append((start, end, normalised))
        pos = end
    return found


def extract_entities(text: str, default_region: str = "US") -> ExtractedEntities:
    text = _fold(text)
    accounts = [f"ACC-{m.group('digits')}" for m in _ACCOUNT.finditer(text)]
    # In the form of the others, as "acct 48213" is ACC-48213.
    without_emails = _without_emails(text)
    accounts += ["ACC-" + re.sub(r"\D", "", m.group("account")) for m in _named_accounts(without_emails)]
    services = [f"SVC{m.group(1)}" for m in _SERVICE.finditer(text)]
    error_codes = [
        f"{m.group(1)}-{m.group(2)}" for m in _ERROR_CODE.finditer(text) if m.group(1) not in _NOT_ERROR_PREFIXES
    ]
    scrubbed = _scrub(text)
    return ExtractedEntities(
        account_numbers=_unique(accounts),
        service_ids=_unique(services),
        error_codes=_unique(error_codes),
        phone_numbers=_unique([phone for _, _, phone in _phone_spans(scrubbed, default_region)]),
        monetary_amounts=tuple(_extract_money(scrubbed)),
        emails=_unique([m.group("email") for m in _emails(text)]),
    )


@dataclass(frozen=True, slots=True)
class MaskedText:
    """Text with personal identifiers replaced by placeholders, and the way back."""

    text: str
    replacements: dict[str, str]

    def restore(self, text: str) -> str:
        for placeholder, original in self.replacements.items():
            text = text.replace(placeholder, original)
        return text


def mask_personal_data(text: str, default_region: str | Sequence[str] = "US") -> MaskedText:
    """Replace emails, account numbers and phone numbers with stable placeholders.

    Used before ticket text reaches a language model or a log line: neither needs the values,
    only the fact that they are there. Phone numbers are those of `default_region`, or of each of
    several regions (for logs, whose region is unknown).
    """
    # Accounts and phone numbers have digits and emails an "@": most log values have neither, nor
    # a secret named as one, nor an address written "jane at example dot com".
    folded = _fold(text)
    if "@" not in folded and not _DIGIT.search(folded) and not _SECRET.search(folded) and not _disguised_emails(folded):
        return MaskedText(text=text, replacements={})
    regions = [default_region] if isinstance(default_region, str) else list(default_region)
    replacements: dict[str, str] = {}
    seen: dict[str, str] = {}
    # Counted as they are given: counting the kind's placeholders anew for each one was quadratic
    # in the number of values (a 140 KB log value of 12,500 addresses took 7 s).
    given: Counter[str] = Counter()
    quoted = set(_PLACEHOLDER.findall(text))

    def placeholder(kind: str, original: str) -> str:
        if original not in seen:
            given[kind] += 1
            # One the text itself holds (a ticket quoting "<EMAIL_1>") would be restored as this value.
            while f"<{kind}_{given[kind]}>" in quoted:
                given[kind] += 1
            token = f"<{kind}_{given[kind]}>"
            seen[original] = token
            if kind not in _NEVER_RESTORED:
                replacements[token] = original
        return seen[original]

    # Spans of the original text, found as extraction finds them, so that every phone number
    # extraction reports is masked too (a date next to a number must not hide it).
    spans = [(m.start("email"), m.end("email"), "EMAIL") for m in _emails(folded)]
    spans += [(start, end, "EMAIL") for start, end in _disguised_emails(folded)]
    without_emails = _without_emails(folded)
    spans += [(m.start(), m.end(), "ACCOUNT") for m in _ACCOUNT.finditer(without_emails)]
    spans += [(m.start("account"), m.end("account"), "ACCOUNT") for m in _named_accounts(without_emails)]
    scrubbed = _scrub(folded)
    spans += [(start, end, "PHONE") for region in regions for start, end, _ in _phone_spans(scrubbed, region)]
    sensitive = _sensitive_spans(folded)
    if sensitive:
        # Where a phone or an account pattern matches part of a card number or a secret, the value
        # is masked whole, as what it is.
        spans = [span for span in spans if not any(span[0] < end and start < span[1] for start, end, _ in sensitive)]
        spans += sensitive
    pieces: list[str] = []
    done = 0
    # Of spans that start together, the longest first: a secret's first group ("PIN 4111 1111 1111 1111")
    # masked as the secret and the card number after it left as written.
    for start, end, kind in sorted(spans, key=lambda span: (span[0], -span[1])):
        if start < done:  # the same number found for another region, or inside a longer value
            continue
        pieces += [text[done:start], placeholder(kind, text[start:end])]
        done = end
    pieces.append(text[done:])
    return MaskedText(text="".join(pieces), replacements=replacements)
