"""Settings read from the environment: an empty value means unset for paths, and as given elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import ConfigurationError
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


def test_a_phone_region_without_rules_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a Dutch deployment, whose national numbers the router has no rules for
    monkeypatch.setenv("ROUTER_DEFAULT_REGION", "NL")
    # When the settings are read, then the variable is named with the regions it may be
    with pytest.raises(ConfigurationError, match=r"ROUTER_DEFAULT_REGION: .*must be one of US, CA, GB"):
        load_settings(LocalSettings)


def test_a_phone_region_may_be_given_in_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_DEFAULT_REGION", "gb")
    assert load_settings(LocalSettings).router_default_region == "GB"


@pytest.mark.parametrize(
    "key", ["clé-0123456789abcdef", "0123456789abcdef ", "\t0123456789abcdef", "0123456789\nabcdef"]
)
def test_an_api_key_no_client_could_send_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    # Given an API key a header cannot carry as it is (not ASCII, or padded with spaces)
    monkeypatch.setenv("ROUTER_API_KEY", key)
    # When the settings are read, then it is refused, rather than every request being answered 403
    with pytest.raises(ConfigurationError, match=r"ROUTER_API_KEY: .*printable ASCII"):
        load_settings(LocalSettings)


def test_an_api_key_of_printable_ascii_with_inner_spaces_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_API_KEY", "change me 0123456789!~")
    assert load_settings(LocalSettings).router_api_key == "change me 0123456789!~"


@pytest.mark.parametrize("price", ["Infinity", "1e400"])
def test_an_infinite_model_price_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, price: str) -> None:
    from handlers.settings import RoutingSettings

    # Given MODEL_PRICES whose input price is infinite, as JSON reads both forms
    prices = '{"claude-sonnet-4-5": {"input": ' + price + ', "output": 15, "cache_read": 0.3, "cache_write": 3.75}}'
    monkeypatch.setenv("MODEL_PRICES", prices)
    # When the settings are read, then the variable is named: every ticket would otherwise cost
    # infinity, which no store holds
    with pytest.raises(ConfigurationError, match=r"MODEL_PRICES: .*finite"):
        load_settings(RoutingSettings)
