"""A taxonomy file that cannot be used: one ConfigurationError saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from domain.taxonomy import load_taxonomy


def test_a_taxonomy_file_that_is_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    # Given a taxonomy saved in Latin-1, with an accented team name
    path = tmp_path / "taxonomy.toml"
    path.write_bytes('[[categories]]\nname = "Réseau"\nteam = "Opérations"\n'.encode("latin-1"))
    # When it is loaded, then the error names the file and the offending byte
    with pytest.raises(ConfigurationError, match="is not UTF-8 text \\(byte 24\\)") as raised:
        load_taxonomy(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("opener", ["[", "{ a = "])
def test_a_deeply_nested_taxonomy_file_is_refused_naming_it(tmp_path: Path, opener: str) -> None:
    # Given a TOML file nesting arrays or inline tables far deeper than the parser recurses
    path = tmp_path / "taxonomy.toml"
    path.write_text("a = " + opener * 100_000)
    # When it is loaded, then the error names the file instead of a RecursionError escaping
    with pytest.raises(ConfigurationError, match="nested too deeply") as raised:
        load_taxonomy(path)
    assert str(path) in str(raised.value)
