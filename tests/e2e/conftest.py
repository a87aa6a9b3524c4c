"""End-to-end fixtures: the same fake AWS environment as the integration tests (fake credentials,
a fixed region, no profile, an empty AWS config), so that nothing here can reach a real account."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.conftest import aws, fake_aws_environment

__all__ = ["aws", "fake_aws_environment"]

# Set by `invoke` and `serve` for their own process (os.environ.setdefault): run in-process here, they
# would turn metrics off for every later test, whose handlers then flush nothing and warn of it.
_SET_BY_COMMANDS = ("POWERTOOLS_METRICS_DISABLED",)


@pytest.fixture(autouse=True)
def command_settings_restored() -> Iterator[None]:
    before = {name: os.environ.get(name) for name in _SET_BY_COMMANDS}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
