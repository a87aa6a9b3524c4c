"""End-to-end fixtures: the same fake AWS environment as the integration tests (fake credentials,
a fixed region, no profile, an empty AWS config), so that nothing here can reach a real account."""

from __future__ import annotations

from tests.integration.conftest import aws, fake_aws_environment

__all__ = ["aws", "fake_aws_environment"]
