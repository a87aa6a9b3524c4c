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
