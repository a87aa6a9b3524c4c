"""The embedded mode's customer and service-status files, given files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.local.files import JsonCustomerDirectory, JsonServiceStatusProvider
from domain.errors import ConfigurationError


@pytest.mark.parametrize(
    ("reader", "what"), [(JsonCustomerDirectory, "customers"), (JsonServiceStatusProvider, "services")]
)
def test_deeply_nested_json_is_refused_naming_the_file(tmp_path: Path, reader: type, what: str) -> None:
    # Given a JSON file nesting arrays far deeper than the json module recurses
    path = tmp_path / f"{what}.json"
    path.write_text("[" * 100_000)
    # When it is read, then the error names the file instead of a RecursionError escaping
    with pytest.raises(ConfigurationError, match="JSON nested too deeply to read") as raised:
        reader(path)
    assert str(raised.value).startswith(f"{what} file {path} ")


@pytest.mark.parametrize(
    "document",
    [
        pytest.param('{"CUST-1": {"customer_id": "CUST-1", "is_vip": true}}', id="keyed-by-id"),
        pytest.param('{"profiles": [{"customer_id": "CUST-1", "is_vip": true}]}', id="other-key"),
    ],
)
def test_a_customers_object_without_a_customers_array_is_refused(tmp_path: Path, document: str) -> None:
    # Given a customers file that is an object, but not one with a "customers" array
    path = tmp_path / "customers.json"
    path.write_text(document)
    # When it is read, then it is refused naming the shape expected, instead of read as no customers
    with pytest.raises(ConfigurationError, match='expected a JSON array of profiles, or an object with a "customers"'):
        JsonCustomerDirectory(path)


def test_customers_under_a_customers_key_are_read(tmp_path: Path) -> None:
    path = tmp_path / "customers.json"
    path.write_text('{"customers": [{"customer_id": "CUST-1", "is_vip": true}]}')
    assert JsonCustomerDirectory(path).get_profile("CUST-1").is_vip


@pytest.mark.parametrize("document", ['{"Outages": [{"outage_id": "O-1", "service_id": "SVC1"}]}', "{}"])
def test_a_services_snapshot_without_an_outages_list_is_refused(tmp_path: Path, document: str) -> None:
    # Given a status snapshot whose outages are under another key, or absent
    path = tmp_path / "services.json"
    path.write_text(document)
    # When it is read, then it is refused, instead of read as a snapshot with no outage at all
    with pytest.raises(ConfigurationError, match='has no "outages" list'):
        JsonServiceStatusProvider(path)


def test_a_services_snapshot_with_an_empty_outages_list_is_read(tmp_path: Path) -> None:
    path = tmp_path / "services.json"
    path.write_text('{"outages": [], "overall_health": "Healthy"}')
    assert JsonServiceStatusProvider(path).get_status(["SVC1"]).outages == ()


def test_files_saved_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    # Given customer and status files saved by a Windows editor, which starts UTF-8 with a byte-order mark
    customers, services = tmp_path / "customers.json", tmp_path / "services.json"
    customers.write_bytes(b"\xef\xbb\xbf" + b'[{"customer_id": "CUST-1", "is_vip": true}]')
    services.write_bytes(b"\xef\xbb\xbf" + b'{"outages": [{"outage_id": "O-1", "service_id": "SVC1"}]}')
    # When they are read, then they are read as the files they are
    assert JsonCustomerDirectory(customers).get_profile("CUST-1").is_vip
    assert [o.outage_id for o in JsonServiceStatusProvider(services).get_status(["SVC1"]).outages] == ["O-1"]


def test_a_customer_listed_twice_with_two_profiles_is_refused(tmp_path: Path) -> None:
    # Given a customers file listing one customer as a VIP and again as not one
    path = tmp_path / "customers.json"
    path.write_text(
        '[{"customer_id": "CUST-1", "is_vip": true}, {"customer_id": "CUST-2"}, {"customer_id": "CUST-1", "is_vip": false}]'
    )
    # When it is read, then it is refused naming the entry, rather than one profile silently winning
    with pytest.raises(ConfigurationError, match="2: customer_id 'CUST-1' is listed again with another profile"):
        JsonCustomerDirectory(path)


def test_a_customer_listed_twice_alike_is_read(tmp_path: Path) -> None:
    path = tmp_path / "customers.json"
    path.write_text('[{"customer_id": "CUST-1", "is_vip": true}, {"customer_id": "CUST-1", "is_vip": true}]')
    assert JsonCustomerDirectory(path).get_profile("CUST-1").is_vip


@pytest.mark.parametrize(
    ("reader", "document", "message"),
    [
        (JsonServiceStatusProvider, "[]", 'expected a JSON object with an "outages" list, not an array'),
        (JsonCustomerDirectory, '"CUST-1"', "expected a JSON array of profiles, not a string"),
        (JsonCustomerDirectory, '{"customers": {"CUST-1": {}}}', "expected a JSON array of profiles, not an object"),
    ],
)
def test_a_file_of_the_wrong_json_kind_is_refused_saying_what_it_should_hold(
    tmp_path: Path, reader: type, document: str, message: str
) -> None:
    # Given a customers or services file holding another kind of JSON than the one expected
    path = tmp_path / "file.json"
    path.write_text(document)
    # When it is read, then the error says what the file should hold, not pydantic's class name at no field
    with pytest.raises(ConfigurationError) as refused:
        reader(path)
    assert str(refused.value).endswith(f"file {path}: {message}")


def test_a_service_asked_for_in_another_case_gets_its_outages(tmp_path: Path) -> None:
    # Given a snapshot with an outage on SVC1
    services = tmp_path / "services.json"
    services.write_text('{"outages": [{"outage_id": "O-1", "service_id": "SVC1"}]}', encoding="utf-8")
    # When the status of svc1 is asked for, then that outage is in the answer
    assert [o.outage_id for o in JsonServiceStatusProvider(services).get_status(["svc1"]).outages] == ["O-1"]
