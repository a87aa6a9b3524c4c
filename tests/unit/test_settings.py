"""Settings read from the environment: an empty value means unset for paths, and as given elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.settings import LocalSettings, load_settings


def test_an_empty_path_is_unset_but_an_empty_model_id_switches_the_second_opinion_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given ROUTER_HOME and ROUTER_TAXONOMY exported empty, and the second-opinion model set to nothing
    monkeypatch.setenv("ROUTER_HOME", "")
    monkeypatch.setenv("ROUTER_TAXONOMY", "")
    monkeypatch.setenv("BEDROCK_CLASSIFIER_MODEL_ID", "")
    # When the settings are read
    settings = load_settings(LocalSettings)
    # Then the paths take their defaults rather than meaning this directory, and the model id stays
    # empty, which is how the second opinion is switched off
    assert (settings.router_home, settings.router_taxonomy) == (Path(".ticket-router"), None)
    assert settings.bedrock_classifier_model_id == ""
