"""A taxonomy file or label-team map that cannot be used: one ConfigurationError saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from domain.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def test_a_taxonomy_file_that_is_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    # Given a taxonomy saved in Latin-1, with an accented team name
    path = tmp_path / "taxonomy.toml"
    path.write_bytes('[[categories]]\nname = "Réseau"\nteam = "Opérations"\n'.encode("latin-1"))
    # When it is loaded, then the error names the file and the offending byte
    with pytest.raises(ConfigurationError, match="is not UTF-8 text \\(byte 24\\)") as raised:
        load_taxonomy(path)
    assert str(path) in str(raised.value)


def test_a_taxonomy_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    # Given the bundled taxonomy saved by an editor that writes a UTF-8 byte-order mark
    path = tmp_path / "taxonomy.toml"
    path.write_bytes(b"\xef\xbb\xbf" + (Path(__file__).parents[2] / "domain" / "taxonomy.toml").read_bytes())
    # When it is loaded, then it is the same taxonomy
    assert load_taxonomy(path) == TAXONOMY


@pytest.mark.parametrize("opener", ["[", "{ a = "])
def test_a_deeply_nested_taxonomy_file_is_refused_naming_it(tmp_path: Path, opener: str) -> None:
    # Given a TOML file nesting arrays or inline tables far deeper than the parser recurses
    path = tmp_path / "taxonomy.toml"
    path.write_text("a = " + opener * 100_000)
    # When it is loaded, then the error names the file instead of a RecursionError escaping
    with pytest.raises(ConfigurationError, match="nested too deeply") as raised:
        load_taxonomy(path)
    assert str(path) in str(raised.value)


def test_a_label_team_map_naming_a_team_the_taxonomy_lacks_is_refused() -> None:
    # Given labels mapped to one real team and two that the taxonomy does not have
    label_teams = {"card_lost": "Account Management", "refund": "Refunds Desk", "roaming": "network ops"}
    # When the taxonomy takes the labels as its categories
    with pytest.raises(ConfigurationError) as raised:
        TAXONOMY.with_label_teams(label_teams, source="label-team map teams.csv")
    # Then the error names the map, each unknown team, and the teams to choose from
    message = str(raised.value)
    assert message.startswith("label-team map teams.csv names team(s) the taxonomy does not have: ")
    assert "'Refunds Desk', 'network ops'" in message
    assert "'Network Operations', 'Billing Support', 'Technical Support', 'Account Management'" in message


def test_labels_mapped_to_taxonomy_teams_become_its_categories() -> None:
    # Given labels mapped to teams the taxonomy has
    taxonomy = TAXONOMY.with_label_teams({"card_lost": "Account Management", "refund": "Billing Support"})
    # Then they are the categories, each routed to its team
    assert taxonomy.category_names == ("card_lost", "refund")
    assert (taxonomy.team_for("card_lost"), taxonomy.team_for("refund")) == ("Account Management", "Billing Support")


def test_labels_that_differ_only_in_case_match_exactly_or_not_at_all() -> None:
    # Given a model's labels "card" and "Card", sent to different teams
    taxonomy = TAXONOMY.with_label_teams({"card": "Account Management", "Card": "Billing Support"})
    # Then each is found under its own spelling, and neither under another, which would be a guess
    assert (taxonomy.team_for("card"), taxonomy.team_for("Card")) == ("Account Management", "Billing Support")
    assert taxonomy.find_category("CARD") is None
    # While a label of its own case still matches in any case
    assert TAXONOMY.find_category("network OUTAGE") == TAXONOMY.find_category("Network Outage")


def test_age_points_that_fall_as_a_ticket_waits_are_refused(tmp_path: Path) -> None:
    # Given a taxonomy giving 10 points at 24 hours but only 5 at 48
    path = tmp_path / "taxonomy.toml"
    path.write_text(
        '[[categories]]\nname = "Network Outage"\nteam = "Network Operations"\n\n[priority.age]\n48 = 5\n24 = 10\n',
        encoding="utf-8",
    )
    # When it is loaded, then the error names the file and the setting
    with pytest.raises(ConfigurationError, match=r"priority\.age: .*at least as many points for more hours") as raised:
        load_taxonomy(path)
    assert str(path) in str(raised.value)


def test_stray_spaces_around_a_category_or_team_are_not_part_of_it(tmp_path: Path) -> None:
    # Given a taxonomy whose category and team were typed with stray spaces
    path = tmp_path / "taxonomy.toml"
    path.write_text('[[categories]]\nname = "Billing Dispute "\nteam = " Billing Support"\n', encoding="utf-8")
    # When it is loaded
    taxonomy = load_taxonomy(path)
    # Then a model's "Billing Dispute" is that category, and its team is "Billing Support"
    category = taxonomy.find_category("Billing Dispute")
    assert category is not None
    assert (category.name, taxonomy.teams) == ("Billing Dispute", ("Billing Support",))


def test_a_blank_category_name_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.toml"
    path.write_text('[[categories]]\nname = "  "\nteam = "Billing Support"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"categories\.0\.name: String should have at least 1 character"):
        load_taxonomy(path)


def test_a_p3_floor_above_p2_is_refused(tmp_path: Path) -> None:
    # Given a taxonomy giving P3 a floor above P2's (a score of 55 would then be P3, and 45 P2)
    path = tmp_path / "taxonomy.toml"
    path.write_text(
        '[[categories]]\nname = "Network Outage"\nteam = "Network Operations"\n\n'
        "[priority.levels]\nP0 = 80\nP1 = 60\nP2 = 40\nP3 = 50\n",
        encoding="utf-8",
    )
    # When it is loaded, then the error names the setting
    with pytest.raises(ConfigurationError, match=r"priority\.levels: .*P2 > P3"):
        load_taxonomy(path)


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("service_impact = -10", r"priority\.service_impact: Input should be greater than or equal to 0"),
        ("age = { 24 = -5 }", r"priority\.age: .*must not be negative"),
        (
            "customer = { vip = -30, Enterprise = 20, Business = 10, Consumer = 0 }",
            r"priority\.customer\.vip: Input should be greater than or equal to 0",
        ),
    ],
)
def test_an_outage_age_or_customer_that_would_lower_the_priority_is_refused(
    tmp_path: Path, setting: str, error: str
) -> None:
    # Given a taxonomy where an outage, a day's wait, or being a VIP would make a ticket less urgent
    path = tmp_path / "taxonomy.toml"
    path.write_text(
        f'[[categories]]\nname = "Network Outage"\nteam = "Network Operations"\n\n[priority]\n{setting}\n',
        encoding="utf-8",
    )
    # When it is loaded, then the error names the setting
    with pytest.raises(ConfigurationError, match=error):
        load_taxonomy(path)


def test_a_negative_age_threshold_is_refused_naming_it(tmp_path: Path) -> None:
    # Given a taxonomy giving points from -5 hours of age: every ticket, new ones included, reaches it
    path = tmp_path / "taxonomy.toml"
    path.write_text(
        '[[categories]]\nname = "Network Outage"\nteam = "Network Operations"\n\n[priority.age]\n-5 = 10\n',
        encoding="utf-8",
    )
    # When it is loaded, then the error names the setting and the threshold
    with pytest.raises(ConfigurationError, match=r"priority\.age: .*thresholds .* must not be negative: \[-5\]"):
        load_taxonomy(path)


def test_a_customer_weight_for_no_account_type_is_refused_naming_it(tmp_path: Path) -> None:
    # Given a taxonomy raising Business customers' weight on a line of its own, under a name that
    # differs in case from the one already there
    path = tmp_path / "taxonomy.toml"
    path.write_text(
        '[[categories]]\nname = "A"\nteam = "T"\n\n[priority.customer]\n'
        "vip = 30\nEnterprise = 20\nBusiness = 10\nConsumer = 0\nbusiness = 25\n",
        encoding="utf-8",
    )
    # When it is loaded, then the weight that no customer would ever get is named, not ignored
    with pytest.raises(ConfigurationError, match=r"priority\.customer: .*for no account type: \[.business.\]"):
        load_taxonomy(path)


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ('[[categories]]\nname = "A"\nteam = "T"\nseverity = true\n', r"categories\.0\.severity: Input should be"),
        (
            'manual_review_threshold = true\n[[categories]]\nname = "A"\nteam = "T"\n',
            r"manual_review_threshold: Input should be",
        ),
        (
            '[[categories]]\nname = "A"\nteam = "T"\n[priority.customer]\nvip = true\nEnterprise = 20\n'
            "Business = 10\nConsumer = 0\n",
            r"priority\.customer\.vip: Input should be",
        ),
    ],
)
def test_a_true_or_false_where_a_number_belongs_is_refused_naming_it(tmp_path: Path, setting: str, error: str) -> None:
    # Given a taxonomy with a boolean typed where a number goes (read as 1, it changed routing unsaid)
    path = tmp_path / "taxonomy.toml"
    path.write_text(setting, encoding="utf-8")
    # When it is loaded, then the error names the setting
    with pytest.raises(ConfigurationError, match=error):
        load_taxonomy(path)
