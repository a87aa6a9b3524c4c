"""template.yaml, checked on its plain-CloudFormation translation for what cfn-lint cannot see.

The linters prove the template is well-formed; these tests pin down what it must *mean*: handler paths that
resolve, IAM scoped to our own resources, dead-letter queues and alarms wired, canary deployments guarded by
alarms and the PreTraffic hook, the DynamoDB contract, and that a dangling reference fails the offline check.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import patch

import pytest
from pydantic import BaseModel

from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS
from adapters.http.ticketing import HttpTicketingSystem
from domain.entities import PHONE_REGIONS
from domain.models import (
    IDENTIFIER_MAX_LENGTH,
    IDENTIFIER_PATTERN,
    MAX_DESCRIPTION_CHARS,
    MAX_SUBJECT_CHARS,
    SyncStatus,
)
from handlers import observability, settings, ticketing_update
from handlers import orchestrator as orchestrator_handler

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

FUNCTIONS = {
    "IngestionFunction": "handlers.ingestion.lambda_handler",
    "OrchestratorFunction": "handlers.orchestrator.lambda_handler",
    "TicketingUpdateFunction": "handlers.ticketing_update.lambda_handler",
    "PreTrafficHookFunction": "handlers.codedeploy_hook.lambda_handler",
}
DEPLOYED = {  # function -> (its role, its log group, its canary alarm, its requirements file)
    "IngestionFunction": ("TicketIngestionRole", "IngestionLogGroup", "IngestionAliasErrorsAlarm", "ingestion"),
    "OrchestratorFunction": (
        "AgentOrchestratorRole",
        "OrchestratorLogGroup",
        "OrchestratorAliasErrorsAlarm",
        "orchestrator",
    ),
    "TicketingUpdateFunction": (
        "TicketingSystemUpdateRole",
        "TicketingUpdateLogGroup",
        "TicketingUpdateAliasErrorsAlarm",
        "ticketing_update",
    ),
}
SETTINGS: dict[str, type[BaseModel]] = {
    "IngestionFunction": settings.IngestionSettings,
    "OrchestratorFunction": settings.OrchestratorSettings,
    "TicketingUpdateFunction": settings.TicketingUpdateSettings,
}

# Actions AWS offers no resource-level permissions for: the only statements allowed Resource "*".
STAR_RESOURCE_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
# Wildcards inside an ARN we accept, each for a stated reason.
ALLOWED_ARN_WILDCARDS = (
    # A cross-region inference profile may forward to its model in any region of the geography.
    re.compile(r"^arn:\$\{AWS::Partition\}:bedrock:\*::foundation-model/\$\{Bedrock(Classifier)?ModelId\}$"),
    # dynamodb:ListStreams on the streams of our one table (stream labels are generated).
    re.compile(r"^\$\{RoutingDecisionsTable\.Arn\}/stream/\*$"),
    # The pre-traffic hook invokes versions of our functions: a policy naming the new version would be
    # rewritten by each deployment just before the hook runs, and might not have propagated.
    re.compile(r"^\$\{(Ingestion|Orchestrator|TicketingUpdate)Function\.Arn\}:\*$"),
)
CONTRACT_METRICS = frozenset(
    {
        "TicketsProcessed",
        "ProcessingTime",
        "ConfidenceScore",
        "ManualReviewRate",
        "TicketingSystemSyncFailures",
        "BedrockAPIErrors",
        "CostPerTicket",
        "RoutingAccuracy",
    }
)
# Emitted beyond the design's list: RoutingAccuracy on the dashboard is TicketsRerouted / TicketsProcessed, and
# EvidenceUnavailable counts tickets routed while a customer DB, status service or history lookup was down, and
# UnknownCustomers those whose customer the customer DB answered it does not know.
# ModelAnswersWithoutRouting / ModelConsulted is the share of escalations a model answered without a routing.
SUPPORTING_METRICS = frozenset(
    {"TicketsRerouted", "EvidenceUnavailable", "UnknownCustomers", "ModelAnswersWithoutRouting", "ModelConsulted"}
)


# --- helpers -------------------------------------------------------------------------------------------------------


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def describe(value: Any) -> Iterator[str]:
    """A resource/value as comparable strings: "Ref:X", "GetAtt:X.Attr", the Sub template, or the literal."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from describe(item)
    elif isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            if arg != "AWS::NoValue":
                yield f"Ref:{arg}"
        elif key == "Fn::GetAtt":
            yield "GetAtt:" + (arg if isinstance(arg, str) else ".".join(arg))
        elif key == "Fn::Sub":
            yield arg if isinstance(arg, str) else arg[0]
        elif key == "Fn::If":
            yield from describe(arg[1])
            yield from describe(arg[2])
        else:
            raise AssertionError(f"unexpected intrinsic {key} in {value}")
    else:
        raise AssertionError(f"cannot describe {value!r}")


def policy_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        found.extend(as_list(policy["PolicyDocument"]["Statement"]))
    return found


def grants(role: dict[str, Any]) -> dict[str, set[str]]:
    """action -> the resources it is allowed on."""
    table: dict[str, set[str]] = {}
    for statement in policy_statements(role):
        assert statement["Effect"] == "Allow", statement
        for action in as_list(statement["Action"]):
            table.setdefault(action, set()).update(describe(statement["Resource"]))
    return table


def parameter_defaults(sam_template: dict[str, Any]) -> dict[str, Any]:
    return {name: p.get("Default") for name, p in sam_template["Parameters"].items()}


def handler_file(handler: str) -> tuple[Path, str]:
    module, _, function = handler.rpartition(".")
    return ROOT / (module.replace(".", "/") + ".py"), function


# --- translation and lint ------------------------------------------------------------------------------------------


def test_translated_template_is_cfn_lint_clean(translate_module: ModuleType, translated: dict[str, Any]) -> None:
    assert translate_module.lint(translated) == []


@pytest.mark.parametrize(
    ("original", "broken", "culprit"),
    [
        pytest.param(
            "Destination: !GetAtt OrchestratorFailureQueue.Arn",
            "Destination: !GetAtt NoSuchResource.Arn",
            "NoSuchResource",
            id="getatt-to-a-missing-resource",
        ),
        pytest.param(
            "Value: !Ref TicketApiApiKey",
            "Value: !Ref TicketApiApiKeyTypo",
            "TicketApiApiKeyTypo",
            id="ref-to-a-misspelt-sam-generated-resource",
        ),
    ],
)
def test_a_dangling_reference_fails_the_offline_check(
    translate_module: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    original: str,
    broken: str,
    culprit: str,
) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count(original) == 1, f"the test's anchor {original!r} moved"
    broken_template = tmp_path / "template.yaml"
    broken_template.write_text(text.replace(original, broken), encoding="utf-8")

    # The same entry point `make lint-infra` runs.
    status = translate_module.main(
        ["--template", str(broken_template), "--output", str(tmp_path / "translated.json"), "--lint"]
    )

    assert status == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if culprit in line]
    assert errors, "cfn-lint did not name the dangling reference"
    assert all(": E" in line for line in errors)


def test_a_template_samtranslator_rejects_fails_the_check(translate_module: ModuleType, tmp_path: Path) -> None:
    text = TEMPLATE.read_text(encoding="utf-8").replace("Model: TicketSubmission", "Model: NoSuchModel")
    broken_template = tmp_path / "template.yaml"
    broken_template.write_text(text, encoding="utf-8")

    assert translate_module.main(["--template", str(broken_template), "--output", str(tmp_path / "t.json")]) == 1


# --- functions -----------------------------------------------------------------------------------------------------


def test_the_template_declares_the_handler_contract(sam_template: dict[str, Any]) -> None:
    declared = {
        name: r["Properties"]["Handler"]
        for name, r in sam_template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert declared == FUNCTIONS


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_handler_resolves_to_a_module_and_function(function: str) -> None:
    path, name = handler_file(FUNCTIONS[function])
    if not path.is_file():
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet (the template only references it)")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    top_level |= {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert name in top_level, f"{path.relative_to(ROOT)} defines no top-level {name}"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_function_runtime_and_packaging(sam_template: dict[str, Any], resources: dict[str, Any], function: str) -> None:
    sam = sam_template["Resources"][function]
    assert sam["Metadata"] == {"BuildMethod": "makefile"}
    assert sam["Properties"]["CodeUri"] == "."
    assert re.search(rf"^build-{function}:", (ROOT / "infra.mk").read_text(encoding="utf-8"), re.MULTILINE)
    props = resources[function]["Properties"]
    assert props["Runtime"] == "python3.11"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert f"{function}Aliaslive" in resources


def test_sizes_timeouts_and_reserved_concurrency(resources: dict[str, Any]) -> None:
    expected = {"IngestionFunction": (512, 10, 10), "OrchestratorFunction": (2048, 30, 20)}
    expected["TicketingUpdateFunction"] = (512, 75, 10)
    for function, (memory, timeout, reserved) in expected.items():
        props = resources[function]["Properties"]
        assert (props["MemorySize"], props["Timeout"]) == (memory, timeout), function
        assert props["ReservedConcurrentExecutions"] == {
            "Fn::If": ["UseReservedConcurrency", reserved, {"Ref": "AWS::NoValue"}]
        }


def test_the_ticketing_update_outlives_every_retry_of_a_push(resources: dict[str, Any]) -> None:
    # Given the function's timeout and the retry settings it runs with
    props = resources["TicketingUpdateFunction"]["Properties"]
    env = {name: value for name, value in props["Environment"]["Variables"].items() if isinstance(value, str)}
    with patch.dict(
        os.environ, {**env, "TICKETING_SYSTEM_ENDPOINT": "https://t", "TICKETING_SYSTEM_API_KEY_SECRET": "s"}
    ):
        update_settings = settings.load_settings(settings.TicketingUpdateSettings)
    adapter = HttpTicketingSystem(
        "https://t",
        lambda: "key",
        max_retries=update_settings.max_retries,
        retry_delay_base=update_settings.retry_delay_base,
        timeout=update_settings.http_timeout_seconds,
    )

    # Then a push whose every attempt times out still makes all its retries before the deadline
    # the handler sets (the timeout less its margin); the stream's retries come on top
    assert props["Timeout"] - ticketing_update.DEADLINE_MARGIN_SECONDS >= adapter.longest_push_seconds


def test_one_hung_aws_call_fits_inside_every_functions_time(resources: dict[str, Any]) -> None:
    # Then the ingestion answers (503) before its own timeout, and the orchestrator and the
    # ticketing update keep enough time past their deadlines for their last write
    assert resources["IngestionFunction"]["Properties"]["Timeout"] > AWS_CALL_WORST_CASE_SECONDS
    assert orchestrator_handler.DEADLINE_MARGIN_SECONDS >= AWS_CALL_WORST_CASE_SECONDS
    assert ticketing_update.DEADLINE_MARGIN_SECONDS >= AWS_CALL_WORST_CASE_SECONDS


@pytest.mark.parametrize("function", sorted(DEPLOYED))
def test_environment_satisfies_the_settings_and_metrics_contract(
    sam_template: dict[str, Any], resources: dict[str, Any], function: str
) -> None:
    env = resources[function]["Properties"]["Environment"]["Variables"]
    required = {name.upper() for name, field in SETTINGS[function].model_fields.items() if field.is_required()}
    assert required <= set(env), f"{function} lacks {sorted(required - set(env))}"
    assert env["POWERTOOLS_SERVICE_NAME"] == observability.SERVICE_NAME
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == observability.METRICS_NAMESPACE
    assert env["LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_the_pretraffic_hook_gets_the_stacks_log_level(resources: dict[str, Any]) -> None:
    env = resources["PreTrafficHookFunction"]["Properties"]["Environment"]["Variables"]
    assert env["LOG_LEVEL"] == env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_environment_values(sam_template: dict[str, Any], resources: dict[str, Any]) -> None:
    ingestion = resources["IngestionFunction"]["Properties"]["Environment"]["Variables"]
    assert ingestion["EVENTBRIDGE_BUS_NAME"] == {"Ref": "TicketBus"}
    assert ingestion["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    assert ingestion["CUSTOMER_CACHE_TABLE"] == {"Ref": "CustomerCacheTable"}
    update = resources["TicketingUpdateFunction"]["Properties"]["Environment"]["Variables"]
    assert (update["MAX_RETRIES"], update["RETRY_DELAY_BASE"]) == ("5", "1")
    assert update["TICKETING_SYSTEM_API_KEY_SECRET"] == {"Ref": "TicketingSecretName"}
    orchestrator = resources["OrchestratorFunction"]["Properties"]["Environment"]["Variables"]
    assert orchestrator["ROUTING_ENGINE"] == {"Ref": "RoutingEngine"}

    # With the parameter defaults the model ids are the ones the code defaults to.
    defaults = parameter_defaults(sam_template)
    assert defaults["RoutingEngine"] == "hybrid"
    condition, with_profile, _ = orchestrator["BEDROCK_MODEL_ID"]["Fn::If"]
    assert condition == "UseInferenceProfile" and defaults["BedrockInferenceProfilePrefix"] != "none"
    assert with_profile == {"Fn::Sub": "${BedrockInferenceProfilePrefix}.${BedrockModelId}"}
    assert f"{defaults['BedrockInferenceProfilePrefix']}.{defaults['BedrockModelId']}" == settings.DEFAULT_SONNET
    assert (
        f"{defaults['BedrockInferenceProfilePrefix']}.{defaults['BedrockClassifierModelId']}" == settings.DEFAULT_HAIKU
    )


def resolve(value: Any, parameters: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """A translated template value with the given parameter values: the intrinsics used in environments."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return parameters.get(arg, f"<{arg}>")
        if key == "Fn::If":
            condition, then, otherwise = arg
            return resolve(
                then if resolve(conditions[condition], parameters, conditions) else otherwise, parameters, conditions
            )
        if key == "Fn::Equals":
            return resolve(arg[0], parameters, conditions) == resolve(arg[1], parameters, conditions)
        if key == "Fn::Not":
            return not resolve(arg[0], parameters, conditions)
        if key == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(parameters.get(m.group(1), f"<{m.group(1)}>")), arg)
    return value


def deployed_environment(
    translated: dict[str, Any], sam_template: dict[str, Any], function: str, **parameters: str
) -> dict[str, str]:
    """A function's environment as deployed with these parameter values (the others at their defaults)."""
    values = {**parameter_defaults(sam_template), "AWS::Region": "us-east-1", **parameters}
    variables = translated["Resources"][function]["Properties"]["Environment"]["Variables"]
    resolved = {name: resolve(value, values, translated["Conditions"]) for name, value in variables.items()}
    return {name: str(value) for name, value in resolved.items() if value != "<AWS::NoValue>"}


@pytest.mark.parametrize(
    "model_prices", ["", json.dumps({"nova": {"input": 0.8, "output": 3.2, "cache_read": 0.2, "cache_write": 0.8}})]
)
def test_the_orchestrator_starts_with_any_model_the_parameters_allow(
    translated: dict[str, Any], sam_template: dict[str, Any], model_prices: str
) -> None:
    from adapters.clock import FixedClock
    from adapters.engines.pipeline import PipelineEngine
    from domain.taxonomy import load_taxonomy
    from domain.toolkit import RoutingToolkit
    from handlers.model_factory import build_model_engine
    from tests.builders import NOW, FakeCustomers, FakeServiceStatus, FixedClassifier, InMemoryRepository

    # Given the orchestrator deployed with the default models, or with models priced by the ModelPrices parameter
    models = (
        {}
        if not model_prices
        else {"BedrockModelId": "amazon.nova-pro-v1:0", "BedrockClassifierModelId": "amazon.nova-micro-v1:0"}
    )
    env = deployed_environment(translated, sam_template, "OrchestratorFunction", ModelPrices=model_prices, **models)
    with patch.dict(os.environ, env):
        orchestrator_settings = settings.load_settings(settings.OrchestratorSettings)
    toolkit = RoutingToolkit(
        taxonomy=load_taxonomy(),
        classifier=FixedClassifier("Billing Dispute", 0.9),
        customers=FakeCustomers(),
        service_status=FakeServiceStatus(),
        history=InMemoryRepository(),
        clock=FixedClock(NOW),
    )

    # When its engine is built, as at the function's start
    engine = build_model_engine(
        orchestrator_settings, toolkit=toolkit, pipeline=PipelineEngine(toolkit), model=object()
    )

    # Then it starts (a model without a price would refuse to), with the models the parameters name
    assert engine.name == "hybrid"
    expected = models.get("BedrockModelId", "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert orchestrator_settings.bedrock_model_id == f"us.{expected}"


@pytest.mark.parametrize("parameter", ["BedrockModelId", "BedrockClassifierModelId"])
def test_a_model_parameter_given_an_inference_profile_id_is_refused_at_deploy(
    sam_template: dict[str, Any], parameter: str
) -> None:
    # Given the model parameter's constraint, which CloudFormation checks before creating anything
    spec = sam_template["Parameters"][parameter]
    pattern = spec["AllowedPattern"]
    # Then foundation-model ids pass, its default among them
    for model in (spec["Default"], "amazon.nova-pro-v1:0", "meta.llama3-1-70b-instruct-v1:0"):
        assert re.fullmatch(pattern, model), model
    # And an inference-profile id, which would deploy prefixed twice (us.us.anthropic...), is refused, saying why
    for profile in (
        settings.DEFAULT_SONNET,
        settings.DEFAULT_HAIKU,
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ):
        assert not re.fullmatch(pattern, profile), profile
    assert "BedrockInferenceProfilePrefix" in spec["ConstraintDescription"]


def rule_value(value: Any, parameters: dict[str, Any]) -> Any:
    """A template rule's condition or assertion, with the given parameter values."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return parameters[arg]
        if key == "Fn::Equals":
            return rule_value(arg[0], parameters) == rule_value(arg[1], parameters)
        if key == "Fn::Not":
            return not rule_value(arg[0], parameters)
        if key == "Fn::And":
            return all(rule_value(item, parameters) for item in arg)
        if key == "Fn::Or":
            return any(rule_value(item, parameters) for item in arg)
        if key == "Fn::Contains":
            return rule_value(arg[1], parameters) in arg[0]
        raise AssertionError(f"unexpected rule function {key}")
    return value


def refused_by_rules(
    translated: dict[str, Any], sam_template: dict[str, Any], *, region: str = "us-east-1", **parameters: str
) -> list[str]:
    """What CloudFormation would say, refusing a deploy to `region` with these parameter values (the
    others at their defaults)."""
    values = {**parameter_defaults(sam_template), "AWS::Region": region, **parameters}
    refused = []
    for rule in translated.get("Rules", {}).values():
        if not rule_value(rule.get("RuleCondition", True), values):
            continue
        refused += [a["AssertDescription"] for a in rule["Assertions"] if not rule_value(a["Assert"], values)]
    return refused


def test_claude_four_five_without_an_inference_profile_is_refused_at_deploy(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    # Given the default models (Claude Sonnet and Haiku 4.5), which Bedrock serves only through a profile
    # Then they deploy through one
    assert refused_by_rules(translated, sam_template) == []
    # And invoked directly (prefix none) they are refused before anything is created, naming the parameter to set
    refused = refused_by_rules(translated, sam_template, BedrockInferenceProfilePrefix="none")
    assert len(refused) == 2 and all("BedrockInferenceProfilePrefix" in message for message in refused)
    # While models offered on demand, or an engine that calls no model, deploy without a profile
    on_demand = {"BedrockModelId": "amazon.nova-pro-v1:0", "BedrockClassifierModelId": "amazon.nova-micro-v1:0"}
    assert refused_by_rules(translated, sam_template, BedrockInferenceProfilePrefix="none", **on_demand) == []
    assert (
        refused_by_rules(translated, sam_template, BedrockInferenceProfilePrefix="none", RoutingEngine="pipeline") == []
    )


def test_an_inference_profile_of_another_geography_than_the_bedrock_region_is_refused_at_deploy(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    # Given the default profile prefix (us), deployed outside the US
    # Then the deploy is refused, naming what to set
    (refused,) = refused_by_rules(translated, sam_template, region="eu-west-1")
    assert "BedrockInferenceProfilePrefix" in refused and "BedrockRegion" in refused
    assert refused_by_rules(translated, sam_template, region="ap-northeast-1") == [refused]
    # And so is a BedrockRegion of another geography than the prefix, wherever the stack is
    (refused,) = refused_by_rules(translated, sam_template, BedrockRegion="eu-central-1")
    assert "BedrockRegion is not one" in refused
    assert (
        len(refused_by_rules(translated, sam_template, BedrockInferenceProfilePrefix="apac", region="eu-west-1")) == 1
    )
    # While a prefix matching the Region, a US BedrockRegion, the global profile, no profile, or an engine
    # that calls no model deploy anywhere
    for region, parameters in [
        ("us-west-2", {}),
        ("eu-west-1", {"BedrockInferenceProfilePrefix": "eu"}),
        ("ap-southeast-2", {"BedrockInferenceProfilePrefix": "apac"}),
        ("eu-west-1", {"BedrockRegion": "us-east-1"}),
        ("eu-west-1", {"BedrockInferenceProfilePrefix": "global"}),
        (
            "eu-west-1",
            {
                "BedrockInferenceProfilePrefix": "none",
                "BedrockModelId": "amazon.nova-pro-v1:0",
                "BedrockClassifierModelId": "amazon.nova-micro-v1:0",
            },
        ),
        ("eu-west-1", {"RoutingEngine": "pipeline"}),
    ]:
        assert refused_by_rules(translated, sam_template, region=region, **parameters) == [], (region, parameters)


def test_canada_takes_the_us_inference_profiles_not_the_eu_or_apac_ones(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    # Given Canada (Central), whose Bedrock routes the US geography's profiles (and global ones)
    # Then the default prefix deploys there, stack or BedrockRegion
    assert refused_by_rules(translated, sam_template, region="ca-central-1") == []
    assert refused_by_rules(translated, sam_template, region="eu-west-1", BedrockRegion="ca-central-1") == []
    # While the EU and APAC profiles, which it does not serve, are refused, naming what to set
    for prefix in ("eu", "apac"):
        (refused,) = refused_by_rules(
            translated, sam_template, region="ca-central-1", BedrockInferenceProfilePrefix=prefix
        )
        assert "BedrockInferenceProfilePrefix" in refused
        assert (
            len(
                refused_by_rules(
                    translated, sam_template, BedrockRegion="ca-central-1", BedrockInferenceProfilePrefix=prefix
                )
            )
            == 1
        )


def test_govcloud_takes_only_its_own_inference_profiles(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    # Given AWS GovCloud (US), a partition of its own: its Bedrock serves us-gov. profiles, and the commercial
    # us., eu., apac. and global. ones only outside it
    assert "us-gov" in sam_template["Parameters"]["BedrockInferenceProfilePrefix"]["AllowedValues"]
    # Then the default prefix (us) is refused in a GovCloud Region, naming what to set
    (refused,) = refused_by_rules(translated, sam_template, region="us-gov-west-1")
    assert "us-gov" in refused and "BedrockInferenceProfilePrefix" in refused
    for prefix in ("eu", "apac", "global"):
        assert (
            len(
                refused_by_rules(translated, sam_template, region="us-gov-east-1", BedrockInferenceProfilePrefix=prefix)
            )
            == 1
        )
    # And so are a commercial prefix with a GovCloud BedrockRegion, and us-gov outside GovCloud
    assert len(refused_by_rules(translated, sam_template, BedrockRegion="us-gov-west-1")) == 1
    assert len(refused_by_rules(translated, sam_template, BedrockInferenceProfilePrefix="us-gov")) == 1
    assert (
        len(
            refused_by_rules(
                translated,
                sam_template,
                region="us-gov-west-1",
                BedrockInferenceProfilePrefix="us-gov",
                BedrockRegion="eu-west-1",
            )
        )
        == 1
    )
    # While us-gov deploys in GovCloud, and an engine that calls no model anywhere
    for region, parameters in [
        ("us-gov-west-1", {"BedrockInferenceProfilePrefix": "us-gov"}),
        ("us-gov-east-1", {"BedrockInferenceProfilePrefix": "us-gov", "BedrockRegion": "us-gov-west-1"}),
        ("us-gov-west-1", {"RoutingEngine": "pipeline"}),
        (
            "us-gov-west-1",
            {
                "BedrockInferenceProfilePrefix": "none",
                "BedrockModelId": "amazon.nova-pro-v1:0",
                "BedrockClassifierModelId": "amazon.nova-micro-v1:0",
            },
        ),
    ]:
        assert refused_by_rules(translated, sam_template, region=region, **parameters) == [], (region, parameters)


def test_the_orchestrator_reads_phone_numbers_as_the_phone_region_parameter_says(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    # Given the regions the parameter offers
    offered = sam_template["Parameters"]["PhoneRegion"]["AllowedValues"]
    # Then they are the regions the phone rules know, and each reaches the orchestrator's settings
    assert tuple(offered) == PHONE_REGIONS
    for region in offered:
        env = deployed_environment(translated, sam_template, "OrchestratorFunction", PhoneRegion=region)
        with patch.dict(os.environ, env):
            assert settings.load_settings(settings.OrchestratorSettings).router_default_region == region


# --- IAM -----------------------------------------------------------------------------------------------------------


def test_only_our_roles_and_sams_codedeploy_role_exist(resources: dict[str, Any]) -> None:
    roles = of_type(resources, "AWS::IAM::Role")
    assert set(roles) == {
        "TicketIngestionRole",
        "AgentOrchestratorRole",
        "TicketingSystemUpdateRole",
        "PreTrafficHookRole",
        "CodeDeployServiceRole",
    }
    assert not of_type(resources, "AWS::IAM::Policy")
    assert not of_type(resources, "AWS::IAM::ManagedPolicy")
    # SAM's CodeDeploy service role: AWS-managed, may invoke only CodeDeployHook_* functions.
    codedeploy = roles.pop("CodeDeployServiceRole")["Properties"]
    assert codedeploy["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"]
    assert "Policies" not in codedeploy
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], f"{name} must carry only its inline, scoped policy"
        principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        assert principal == {"Service": "lambda.amazonaws.com"}


def test_every_statement_is_scoped(resources: dict[str, Any]) -> None:
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        for statement in policy_statements(role):
            actions = set(as_list(statement["Action"]))
            assert all(":" in a and not a.endswith("*") for a in actions), f"{name}: wildcard action in {statement}"
            for target in describe(statement["Resource"]):
                if target == "*":
                    assert actions <= STAR_RESOURCE_ACTIONS, f"{name}: Resource '*' for {sorted(actions)}"
                elif "*" in target:
                    assert any(p.match(target) for p in ALLOWED_ARN_WILDCARDS), f"{name}: wildcard in {target}"


@pytest.mark.parametrize("function", sorted(DEPLOYED))
def test_each_function_has_its_own_role_and_log_group(resources: dict[str, Any], function: str) -> None:
    role, log_group, _, _ = DEPLOYED[function]
    props = resources[function]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": log_group}}
    table = grants(resources[role])
    assert table["logs:CreateLogStream"] == table["logs:PutLogEvents"] == {f"GetAtt:{log_group}.Arn"}
    assert "logs:CreateLogGroup" not in table


def test_ingestion_grants(resources: dict[str, Any]) -> None:
    table = grants(resources["TicketIngestionRole"])
    assert table.pop("events:PutEvents") == {"GetAtt:TicketBus.Arn"}
    assert table.pop("dynamodb:DeleteItem") == {"GetAtt:IdempotencyTable.Arn"}
    # Idempotency records, and feedback attached to a decision (POST /tickets/{id}/feedback).
    assert table.pop("dynamodb:UpdateItem") == {"GetAtt:IdempotencyTable.Arn", "GetAtt:RoutingDecisionsTable.Arn"}
    assert (
        table.pop("dynamodb:GetItem")
        == table.pop("dynamodb:PutItem")
        == {
            "GetAtt:IdempotencyTable.Arn",
            "GetAtt:CustomerCacheTable.Arn",
        }
    )
    assert table.pop("dynamodb:Query") == {"GetAtt:RoutingDecisionsTable.Arn"}
    assert set(table) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
    }


def test_orchestrator_grants(resources: dict[str, Any]) -> None:
    table = grants(resources["AgentOrchestratorRole"])
    assert table.pop("bedrock:InvokeModel") == {
        "arn:${AWS::Partition}:bedrock:${Region}:${AWS::AccountId}:inference-profile/"
        "${BedrockInferenceProfilePrefix}.${BedrockModelId}",
        "arn:${AWS::Partition}:bedrock:${Region}:${AWS::AccountId}:inference-profile/"
        "${BedrockInferenceProfilePrefix}.${BedrockClassifierModelId}",
        "arn:${AWS::Partition}:bedrock:*::foundation-model/${BedrockModelId}",
        "arn:${AWS::Partition}:bedrock:*::foundation-model/${BedrockClassifierModelId}",
    }
    assert table.pop("dynamodb:Query") == {
        "GetAtt:RoutingDecisionsTable.Arn",
        "${RoutingDecisionsTable.Arn}/index/customer_id-timestamp-index",
    }
    assert table.pop("dynamodb:PutItem") == {"GetAtt:RoutingDecisionsTable.Arn", "GetAtt:CustomerCacheTable.Arn"}
    # The repository reads decisions by Query only.
    assert table.pop("dynamodb:GetItem") == {"GetAtt:CustomerCacheTable.Arn"}
    assert table.pop("sqs:SendMessage") == {"GetAtt:OrchestratorFailureQueue.Arn"}
    assert not any(action.startswith(("secretsmanager:", "events:", "dynamodb:Update")) for action in table)


def test_ticketing_update_grants(resources: dict[str, Any]) -> None:
    table = grants(resources["TicketingSystemUpdateRole"])
    for action in ("dynamodb:UpdateItem", "dynamodb:Query"):
        assert table.pop(action) == {"GetAtt:RoutingDecisionsTable.Arn"}
    assert "dynamodb:GetItem" not in table
    for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
        assert table.pop(action) == {"GetAtt:RoutingDecisionsTable.StreamArn"}
    assert table.pop("dynamodb:ListStreams") == {"${RoutingDecisionsTable.Arn}/stream/*"}
    assert table.pop("secretsmanager:GetSecretValue") == {
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${TicketingSecretName}-??????"
    }
    assert table.pop("sqs:SendMessage") == {"GetAtt:TicketingUpdateDLQ.Arn"}
    assert not any(action.startswith(("bedrock:", "events:", "dynamodb:Put")) for action in table)


def test_table_key_use_is_only_via_dynamodb(resources: dict[str, Any]) -> None:
    for name in ("TicketIngestionRole", "AgentOrchestratorRole", "TicketingSystemUpdateRole"):
        kms = [s for s in policy_statements(resources[name]) if any(a.startswith("kms:") for a in as_list(s["Action"]))]
        assert len(kms) == 1, name
        assert kms[0]["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
        assert kms[0]["Condition"] == {
            "StringEquals": {"kms:ViaService": {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"}}
        }
    assert "kms:Decrypt" not in grants(resources["PreTrafficHookRole"])


def test_resource_policies_are_scoped(resources: dict[str, Any]) -> None:
    (queue_policy,) = of_type(resources, "AWS::SQS::QueuePolicy").values()
    (statement,) = queue_policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["OrchestratorEventsDLQ", "Arn"]}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["OrchestratorFunctionTicketReceived", "Arn"]}}
    }
    # A key policy names the key itself as "*"; it delegates to IAM (the ViaService-conditioned grants above).
    (key_statement,) = resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert key_statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


# --- events, dead letters ------------------------------------------------------------------------------------------


def test_event_bus_archive_and_rule(resources: dict[str, Any]) -> None:
    assert resources["TicketBus"]["Properties"]["Name"] == {"Fn::Sub": "${Stage}-ticket-routing-bus"}
    archive = resources["TicketArchive"]["Properties"]
    assert archive["RetentionDays"] == 7
    assert archive["SourceArn"] == {"Fn::GetAtt": ["TicketBus", "Arn"]}
    rule = resources["OrchestratorFunctionTicketReceived"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "TicketBus"}
    assert rule["EventPattern"] == {"source": ["support.ticketing"], "detail-type": ["TicketReceived"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "OrchestratorFunctionAliaslive"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["OrchestratorEventsDLQ", "Arn"]}}


def test_async_invoke_failures_go_to_a_queue(resources: dict[str, Any]) -> None:
    config = resources["OrchestratorFunctionEventInvokeConfig"]["Properties"]
    assert config["Qualifier"] == "live"
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    assert config["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["OrchestratorFailureQueue", "Arn"]}}
    }


def test_stream_mapping(resources: dict[str, Any]) -> None:
    (mapping,) = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["RoutingDecisionsTable", "StreamArn"]}
    assert props["FunctionName"] == {"Ref": "TicketingUpdateFunctionAliaslive"}
    assert props["StartingPosition"] == "LATEST"
    assert 1 <= props["BatchSize"] <= 10
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 3
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 86_400
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["TicketingUpdateDLQ", "Arn"]}}}
    (pattern,) = (json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"])
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sync_status": {"S": ["pending"]}}}}
    # The filter's "pending" is the code's SyncStatus.PENDING.
    assert pattern["dynamodb"]["NewImage"]["sync_status"]["S"] == [SyncStatus.PENDING.value]


def test_every_dead_letter_queue_is_encrypted_and_alarmed(resources: dict[str, Any]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    assert set(queues) == {"OrchestratorEventsDLQ", "OrchestratorFailureQueue", "TicketingUpdateDLQ"}
    alarmed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert alarmed == set(queues)
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86_400


def test_a_second_dead_letter_notifies_again_before_the_queue_is_emptied(resources: dict[str, Any]) -> None:
    # Given the queues' alarms
    sqs_alarms = [a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    sqs_alarms = [props for props in sqs_alarms if props.get("Namespace") == "AWS/SQS"]
    assert len(sqs_alarms) == 3
    for props in sqs_alarms:
        # Then each counts messages arriving in its period, not the queue's depth: once the period of
        # an incident has passed it is OK again, whatever is still in the queue, so the next one notifies.
        # EventBridge and Lambda put dead letters with SendMessage, which NumberOfMessagesSent counts.
        assert props["MetricName"] == "NumberOfMessagesSent"
        assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
            "Sum",
            "GreaterThanThreshold",
            0,
        )
        assert props["EvaluationPeriods"] == 1
        assert props["TreatMissingData"] == "notBreaching"
        assert {"Ref": "AlarmTopic"} in props["AlarmActions"]


# --- storage -------------------------------------------------------------------------------------------------------


def test_decisions_table(resources: dict[str, Any]) -> None:
    table = resources["RoutingDecisionsTable"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "ticket_id", "KeyType": "HASH"},
        {"AttributeName": "timestamp", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {"ticket_id": "S", "timestamp": "N", "customer_id": "S", "assigned_team": "S", "sync_status": "S"}
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    # The sparse index replay reads: keys and what picks stale pending decisions, not whole items.
    unsynced = indexes.pop("sync_status-unsynced-index")
    assert unsynced["KeySchema"] == [
        {"AttributeName": "sync_status", "KeyType": "HASH"},
        {"AttributeName": "timestamp", "KeyType": "RANGE"},
    ]
    assert unsynced["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["created_at", "sync_attempted_at"],
    }
    assert set(indexes) == {f"{a}-timestamp-index" for a in ("customer_id", "assigned_team", "sync_status")}
    for name, index in indexes.items():
        assert index["KeySchema"] == [
            {"AttributeName": name.removesuffix("-timestamp-index"), "KeyType": "HASH"},
            {"AttributeName": "timestamp", "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "ALL"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }
    # A retained table needs a retained key.
    key = resources["DataKey"]
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize(
    ("table", "key", "ttl"),
    [("CustomerCacheTable", "customer_id", "expires_at"), ("IdempotencyTable", "id", "expiration")],
)
def test_cache_and_idempotency_tables(resources: dict[str, Any], table: str, key: str, ttl: str) -> None:
    props = resources[table]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True


# --- API -----------------------------------------------------------------------------------------------------------


def test_api_routes_all_need_the_key(resources: dict[str, Any]) -> None:
    paths = resources["TicketApi"]["Properties"]["Body"]["paths"]
    routes = {(path, method) for path, methods in paths.items() for method in methods}
    assert routes == {
        ("/tickets", "post"),
        ("/tickets/{ticket_id}", "get"),
        ("/tickets/{ticket_id}/feedback", "post"),
        ("/health", "get"),
    }
    for path, methods in paths.items():
        for method, operation in methods.items():
            assert operation["security"] == [{"api_key": []}], (path, method)
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            assert "${IngestionFunctionAliaslive}" in uri, "the API must call the live alias (canary)"


def test_post_tickets_body_schema_is_published_and_validated_by_the_handler(resources: dict[str, Any]) -> None:
    body = resources["TicketApi"]["Properties"]["Body"]
    operation = body["paths"]["/tickets"]["post"]
    # API Gateway does not validate the body: its error could not name the field in valid JSON.
    validator = body.get("x-amazon-apigateway-request-validators", {}).get(
        operation.get("x-amazon-apigateway-request-validator", ""), {}
    )
    assert not validator.get("validateRequestBody", False)
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = body["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert schema["required"] == ["customer_id", "description"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"ticket_id", "customer_id", "subject", "description", "timestamp", "channel"}
    assert all("maxLength" in p for p in schema["properties"].values())
    # No bigger than the code accepts.
    assert schema["properties"]["description"]["maxLength"] == MAX_DESCRIPTION_CHARS
    assert schema["properties"]["subject"]["maxLength"] == MAX_SUBJECT_CHARS
    # Ids as the handler takes them: surrounding spaces are stripped, then the domain's pattern applies.
    for field in ("ticket_id", "customer_id"):
        assert schema["properties"][field]["maxLength"] == IDENTIFIER_MAX_LENGTH
        assert schema["properties"][field]["pattern"] == r"^\s*" + IDENTIFIER_PATTERN[1:-1] + r"\s*$"


def test_gateway_error_responses_and_access_logs_are_valid_json(resources: dict[str, Any]) -> None:
    def filled(template: str) -> str:
        # messageString arrives JSON-quoted; the other variables used are plain tokens.
        template = template.replace("$context.error.messageString", '"Invalid request body"')
        return re.sub(r"\$context\.[A-Za-z.]+", "value", template)

    body = resources["TicketApi"]["Properties"]["Body"]
    templates = [
        template
        for response in body.get("x-amazon-apigateway-gateway-responses", {}).values()
        for template in response.get("responseTemplates", {}).values()
    ]
    templates += [
        template
        for r in of_type(resources, "AWS::ApiGateway::GatewayResponse").values()
        for template in r["Properties"].get("ResponseTemplates", {}).values()
    ]
    assert templates, "the BAD_REQUEST_BODY response is declared"
    templates.append(resources["TicketApiStage"]["Properties"]["AccessLogSetting"]["Format"])
    for template in templates:
        # validationErrorString carries unescaped quotes: no template can hold it and stay JSON.
        assert "validationErrorString" not in template
        json.loads(filled(template))


def test_a_throttled_ingestion_is_answered_503_with_retry_after_not_a_bare_500(resources: dict[str, Any]) -> None:
    # Given an API whose usage plan admits more requests at once than the ingestion may run
    stage = resources["TicketApiStage"]["Properties"]["MethodSettings"][0]
    ingestion = resources["IngestionFunction"]["Properties"]
    assert stage["ThrottlingBurstLimit"] > ingestion["ReservedConcurrentExecutions"]["Fn::If"][1]
    # When Lambda throttles an invocation (API Gateway's INTEGRATION_FAILURE), then the client is told
    # to retry, as the function itself tells it when it cannot accept a ticket
    responses = resources["TicketApi"]["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    throttled = responses["INTEGRATION_FAILURE"]
    assert throttled["statusCode"] == "503"
    assert throttled["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    assert "retry" in json.loads(throttled["responseTemplates"]["application/json"].replace("$context.", ""))["message"]


def test_usage_plan_throttle_and_access_logs(resources: dict[str, Any]) -> None:
    plan = resources["TicketApiUsagePlan"]["Properties"]
    assert plan["Throttle"] == {"RateLimit": 100, "BurstLimit": 200}
    assert resources["TicketApiUsagePlanKey"]["Properties"]["KeyId"] == {"Ref": "TicketApiApiKey"}
    stage = resources["TicketApiStage"]["Properties"]
    assert stage["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert json.loads(stage["AccessLogSetting"]["Format"])["requestId"] == "$context.requestId"
    assert stage["TracingEnabled"] is True  # X-Ray traces start at the API, as the functions' do
    (method_settings,) = stage["MethodSettings"]
    assert (method_settings["ThrottlingRateLimit"], method_settings["ThrottlingBurstLimit"]) == (100, 200)


def test_every_function_logs_to_a_log_group_of_ours(resources: dict[str, Any]) -> None:
    # Without LoggingConfig, Lambda creates /aws/lambda/<name> itself, kept forever: no retention.
    for name, function in of_type(resources, "AWS::Lambda::Function").items():
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[log_group]["Type"] == "AWS::Logs::LogGroup", name


def test_log_retention(resources: dict[str, Any]) -> None:
    retention = {
        name: r["Properties"]["RetentionInDays"] for name, r in of_type(resources, "AWS::Logs::LogGroup").items()
    }
    assert retention == {
        "IngestionLogGroup": 7,
        "OrchestratorLogGroup": 7,
        "TicketingUpdateLogGroup": 7,
        "PreTrafficHookLogGroup": 7,
        "ApiAccessLogGroup": 90,
    }


# --- alarms and deployments ----------------------------------------------------------------------------------------


def test_every_alarm_notifies_the_topic(resources: dict[str, Any]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert {"HighErrorRateAlarm", "LowConfidenceAlarm", "HighLatencyAlarm", "SyncFailuresAlarm"} <= set(alarms)
    assert "BedrockThrottlingAlarm" in alarms
    for name, alarm in alarms.items():
        assert {"Ref": "AlarmTopic"} in alarm["Properties"]["AlarmActions"], name
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}


def test_custom_metric_alarms_match_what_the_code_emits(resources: dict[str, Any]) -> None:
    expected = {  # alarm -> (metric, statistic, comparison, threshold, period x evaluation periods in seconds)
        "LowConfidenceAlarm": ("ConfidenceScore", "Average", "LessThanThreshold", 0.6, 900),
        "HighLatencyAlarm": ("ProcessingTime", "Average", "GreaterThanThreshold", 5000, 600),
        "SyncFailuresAlarm": ("TicketingSystemSyncFailures", "Sum", "GreaterThanThreshold", 10, 300),
        # A canary's 5 minutes carry a tenth of the tickets: its rollback alarm fires on the first failure.
        "TicketSyncFailedAlarm": ("TicketingSystemSyncFailures", "Sum", "GreaterThanThreshold", 0, 60),
        "BedrockThrottlingAlarm": ("BedrockAPIErrors", "Sum", "GreaterThanThreshold", 0, 300),
    }
    for name, (metric, statistic, comparison, threshold, window) in expected.items():
        props = resources[name]["Properties"]
        assert props["Namespace"] == observability.METRICS_NAMESPACE
        # Powertools Metrics(service=SERVICE_NAME) adds exactly this dimension to every metric.
        assert props["Dimensions"] == [{"Name": "service", "Value": observability.SERVICE_NAME}]
        assert props["MetricName"] in CONTRACT_METRICS
        actual = (props["MetricName"], props["Statistic"], props["ComparisonOperator"], props["Threshold"])
        assert actual == (metric, statistic, comparison, threshold), name
        assert props["Period"] * props["EvaluationPeriods"] == window, name
        assert props["TreatMissingData"] == "notBreaching"


def test_high_error_rate_is_metric_math_over_the_three_functions(resources: dict[str, Any]) -> None:
    props = resources["HighErrorRateAlarm"]["Properties"]
    assert (props["Threshold"], props["ComparisonOperator"]) == (5, "GreaterThanThreshold")
    (expression,) = [m for m in props["Metrics"] if m.get("ReturnData")]
    assert "100*" in expression["Expression"].replace(" ", "")
    stats = [m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m]
    measured = {
        (s["Metric"]["MetricName"], s["Metric"]["Dimensions"][0]["Value"]["Ref"]) for s in stats if s["Period"] == 300
    }
    assert measured == {(m, f) for m in ("Errors", "Invocations") for f in DEPLOYED}


def _metric_math(expression: str, values: dict[str, float | None]) -> float | None:
    """One datapoint of a CloudWatch metric-math expression made of IF, FILL, comparisons and arithmetic; None is
    a metric without data, and an expression that comes to None produces no datapoint."""

    def value(node: ast.expr) -> Any:
        match node:
            case ast.Constant(value=constant):
                return constant
            case ast.Name(id=name):
                return values[name]
            case ast.Call(func=ast.Name(id="IF"), args=[condition, then, otherwise]):
                return value(then) if value(condition) else value(otherwise)
            case ast.Call(func=ast.Name(id="FILL"), args=[metric, default]):
                filled = value(metric)
                return value(default) if filled is None else filled
            case ast.Compare(left=left, ops=[operator], comparators=[right]):
                compare = {ast.GtE: float.__ge__, ast.Gt: float.__gt__, ast.LtE: float.__le__, ast.Lt: float.__lt__}
                return compare[type(operator)](float(value(left)), float(value(right)))
            case ast.BinOp(left=left, op=operator, right=right):
                a, b = value(left), value(right)
                if a is None or b is None:
                    return None
                arithmetic = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__}
                return a / b if isinstance(operator, ast.Div) else arithmetic[type(operator)](float(a), float(b))
        raise AssertionError(f"not understood here: {ast.dump(node)}")

    return value(ast.parse(expression, mode="eval").body)


@pytest.mark.parametrize(
    ("processed", "unknown", "fires"),
    [
        # A customer DB reached at the wrong path answers every lookup "no such customer": a quiet hour of a
        # low-traffic org (1,000 tickets a day is ~40 an hour by day, a handful at night) must show it too.
        (6, 6, True),
        (9, 5, True),
        (10, 6, True),
        (200, 150, True),
        # Too few to tell from new customers, or a share that is only high by chance.
        (4, 4, False),
        (9, 4, False),
        (10, 5, False),
        (100, 40, False),
        (3, None, False),
        (None, None, False),
    ],
)
def test_unknown_customers_alarm_fires_on_a_mostly_unknown_hour_of_five_or_more(
    resources: dict[str, Any], processed: int | None, unknown: int | None, fires: bool
) -> None:
    # Given the alarm on the share of tickets whose customer the customer DB does not know
    props = resources["UnknownCustomersAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}
    assert {i: s["Metric"]["MetricName"] for i, s in stats.items()} == {
        "unknown": "UnknownCustomers",
        "processed": "TicketsProcessed",
    }
    assert {(s["Period"], s["Stat"]) for s in stats.values()} == {(3600, "Sum")}
    assert (props["ComparisonOperator"], props["EvaluationPeriods"]) == ("GreaterThanThreshold", 1)
    assert props["TreatMissingData"] == "notBreaching"
    (expression,) = [m["Expression"] for m in props["Metrics"] if m.get("ReturnData")]
    # When an hour has these sums
    share = _metric_math(
        expression,
        {
            "processed": None if processed is None else float(processed),
            "unknown": None if unknown is None else float(unknown),
        },
    )
    # Then it breaches exactly when it should
    assert (share is not None and share > props["Threshold"]) is fires


@pytest.mark.parametrize(
    ("consulted", "without_routing", "fires"),
    [
        # A broken prompt: every escalation of the canary's 5 minutes, or most, answered in prose.
        (3, 3, True),
        (5, 4, True),
        (40, 30, True),
        # One or two odd answers, or a share that is not most.
        (2, 2, False),
        (10, 5, False),
        (4, None, False),
        (None, None, False),
    ],
)
def test_model_answers_without_routing_alarm_fires_on_most_escalations_of_five_minutes(
    resources: dict[str, Any], consulted: int | None, without_routing: int | None, fires: bool
) -> None:
    # Given the alarm on the share of tickets the model was asked about and answered without a routing
    props = resources["ModelAnswersWithoutRoutingAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}
    assert {i: s["Metric"]["MetricName"] for i, s in stats.items()} == {
        "withoutRouting": "ModelAnswersWithoutRouting",
        "consulted": "ModelConsulted",
    }
    assert {(s["Period"], s["Stat"]) for s in stats.values()} == {(300, "Sum")}
    assert (props["ComparisonOperator"], props["EvaluationPeriods"]) == ("GreaterThanThreshold", 1)
    assert props["TreatMissingData"] == "notBreaching"
    (expression,) = [m["Expression"] for m in props["Metrics"] if m.get("ReturnData")]
    # When 5 minutes have these sums
    share = _metric_math(
        expression,
        {
            "consulted": None if consulted is None else float(consulted),
            "withoutRouting": None if without_routing is None else float(without_routing),
        },
    )
    # Then it breaches exactly when it should
    assert (share is not None and share > props["Threshold"]) is fires


@pytest.mark.parametrize("function", sorted(DEPLOYED))
def test_canary_deployment_is_guarded_by_alarm_and_pretraffic_hook(resources: dict[str, Any], function: str) -> None:
    _, _, alarm, _ = DEPLOYED[function]
    group = resources[f"{function}DeploymentGroup"]["Properties"]
    # Beside the alias' errors, the failures a function reports without raising roll it back too.
    extra = {
        "IngestionFunction": ["ApiServerErrorsAlarm"],
        "OrchestratorFunction": ["BedrockThrottlingAlarm", "ModelAnswersWithoutRoutingAlarm"],
        "TicketingUpdateFunction": ["TicketSyncFailedAlarm"],
    }
    expected = [{"Name": {"Ref": name}} for name in [alarm, *extra.get(function, [])]]
    assert group["AlarmConfiguration"] == {"Enabled": True, "Alarms": expected}
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    assert group["DeploymentConfigName"] == {
        "Fn::If": [
            "IsProd",
            {"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": "Canary10Percent5Minutes"}]},
            {"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": "AllAtOnce"}]},
        ]
    }
    update = resources[f"{function}Aliaslive"]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}
    assert update["DeploymentGroupName"] == {"Ref": f"{function}DeploymentGroup"}
    # The alarm watches the live alias, which is what the canary shifts.
    dimensions = {d["Name"]: d["Value"] for d in resources[alarm]["Properties"]["Dimensions"]}
    assert dimensions == {"FunctionName": {"Ref": function}, "Resource": {"Fn::Sub": f"${{{function}}}:live"}}
    assert resources[alarm]["Properties"]["MetricName"] == "Errors"


def test_pretraffic_hook(sam_template: dict[str, Any], resources: dict[str, Any]) -> None:
    assert "PreTrafficHookFunctionDeploymentGroup" not in resources, "the hook must not deploy through CodeDeploy"
    props = resources["PreTrafficHookFunction"]["Properties"]
    name = props["FunctionName"]["Fn::Sub"]
    assert name.startswith("CodeDeployHook_"), "AWSCodeDeployRoleForLambda may invoke only CodeDeployHook_*"
    longest_stage = max(sam_template["Parameters"]["Stage"]["AllowedValues"], key=len)
    assert len(name.replace("${Stage}", longest_stage)) <= 64
    env = props["Environment"]["Variables"]
    versions = {}
    for variable, function in (
        ("INGESTION_VERSION_ARN", "IngestionFunction"),
        ("ORCHESTRATOR_VERSION_ARN", "OrchestratorFunction"),
        ("TICKETING_UPDATE_VERSION_ARN", "TicketingUpdateFunction"),
    ):
        version = env[variable]["Ref"]
        assert version.startswith(f"{function}Version") and resources[version]["Type"] == "AWS::Lambda::Version"
        versions[function] = version
    table = grants(resources["PreTrafficHookRole"])
    # Versions of the three functions only (not the new version ARNs, whose policy may lag the deploy).
    assert table["lambda:InvokeFunction"] == {f"${{{function}.Arn}}:*" for function in versions}
    assert table["codedeploy:PutLifecycleEventHookExecutionStatus"] == {
        "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:"
        f"${{ServerlessDeploymentApplication}}/${{{function}DeploymentGroup}}"
        for function in DEPLOYED
    }


def test_only_prod_deploys_by_canary(translated: dict[str, Any]) -> None:
    assert translated["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}


# --- dashboard, outputs, config ------------------------------------------------------------------------------------


def test_dashboard_body_is_json_with_the_reference_widgets(resources: dict[str, Any]) -> None:
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    document = json.loads(re.sub(r"\$\{[^}]+\}", "X", body))
    titles = " | ".join(w["properties"].get("title", "") for w in document["widgets"]).lower()
    for wanted in ("processing rate", "processing time", "confidence", "team", "priority", "error rate", "cost"):
        assert wanted in titles, wanted
    metrics_used = set(re.findall(r'"TicketRouting", "(\w+)"', body))
    assert metrics_used <= CONTRACT_METRICS | SUPPORTING_METRICS
    # RoutingAccuracy, the share of decisions not re-routed, over the whole period
    assert "100 * (1 - FILL(rerouted, 0) / processed)" in body and '"label": "RoutingAccuracy' in body


def test_the_dashboards_alarm_widget_shows_every_alarm(resources: dict[str, Any]) -> None:
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    (widget,) = [w for w in json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))["widgets"] if w["type"] == "alarm"]
    shown = sorted(arn.removeprefix("<").removesuffix(".Arn>") for arn in widget["properties"]["alarms"])
    assert shown == sorted(of_type(resources, "AWS::CloudWatch::Alarm"))


def test_outputs(translated: dict[str, Any]) -> None:
    assert {
        "ApiUrl",
        "ApiKeyId",
        "RoutingDecisionsTableName",
        "EventBusName",
        "OrchestratorEventsDLQUrl",
        "OrchestratorFailureQueueUrl",
        "TicketingUpdateDLQUrl",
        "DashboardName",
        "DashboardUrl",
    } <= set(translated["Outputs"])


def test_the_rollback_runbook_names_only_what_the_stack_outputs(translated: dict[str, Any]) -> None:
    # Given the names the manual rollback needs, all generated by CloudFormation or SAM
    outputs = translated["Outputs"]
    needed = {
        "DeploymentApplicationName": "ServerlessDeploymentApplication",
        "IngestionFunctionName": "IngestionFunction",
        "OrchestratorFunctionName": "OrchestratorFunction",
        "TicketingUpdateFunctionName": "TicketingUpdateFunction",
    }
    # Then the stack outputs each
    assert {name: outputs.get(name, {}).get("Value") for name in needed} == {
        name: {"Ref": resource} for name, resource in needed.items()
    }
    # And the deploy guide points at them, and every "<... output>" it asks for is one of the stack's outputs
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert all(name in guide for name in needed)
    asked = set(re.findall(r"<(\w+) output>", guide))
    assert asked <= set(outputs), sorted(asked - set(outputs))


def _overrides(raw: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', raw))


def _settings(samconfig: dict[str, Any], environment: str, command: str) -> dict[str, Any]:
    """What a SAM CLI command reads of an environment: its own section over the global one, nothing
    else (samcli.lib.config.samconfig.SamConfig.get_all)."""
    section = samconfig[environment]
    return {**section.get("global", {}).get("parameters", {}), **section.get(command, {}).get("parameters", {})}


@pytest.mark.parametrize("environment", ["default", "dev", "staging", "prod"])
def test_samconfig_environment(samconfig: dict[str, Any], sam_template: dict[str, Any], environment: str) -> None:
    section = samconfig[environment]
    deploy = _settings(samconfig, environment, "deploy")
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is (environment == "prod")
    overrides = _overrides(deploy["parameter_overrides"])
    parameters = sam_template["Parameters"]
    assert set(overrides) <= set(parameters)
    assert {name for name, p in parameters.items() if "Default" not in p} <= set(overrides)
    assert overrides["Stage"] == ("dev" if environment == "default" else environment)
    for name, value in overrides.items():
        allowed = parameters[name].get("AllowedValues")
        assert allowed is None or value in allowed, (name, value)
        pattern = parameters[name].get("AllowedPattern")
        assert pattern is None or re.fullmatch(pattern, value), (name, value)
    build = section["build"]["parameters"]
    assert (build["manifest"], build["build_in_source"]) == ("infra.mk", True)


def test_sam_sync_updates_the_stack_sam_deploy_made_keeping_its_parameters(samconfig: dict[str, Any]) -> None:
    # Given the environments with settings for `sam sync`
    synced = [env for env, section in samconfig.items() if isinstance(section, dict) and "sync" in section]
    assert synced == ["default"]
    for environment in synced:
        sync = _settings(samconfig, environment, "sync")
        deploy = _settings(samconfig, environment, "deploy")
        # Then sync updates the stack deploy made, in its region (not the profile's), building in the
        # source tree
        assert (sync.get("stack_name"), sync.get("region")) == (deploy["stack_name"], deploy["region"])
        assert sync.get("build_in_source") is True
        # And it sets no parameter: SAM keeps the stack's values, where a copy here would overwrite the
        # endpoints `sam deploy --guided` saved under deploy with these placeholders
        assert "parameter_overrides" not in sync


@pytest.mark.parametrize("function", sorted(DEPLOYED))
def test_requirements_are_per_function(function: str) -> None:
    lines = (ROOT / "requirements" / f"{DEPLOYED[function][3]}.txt").read_text(encoding="utf-8").splitlines()
    packages = {re.split(r"[<>=!~\[ ;]", line.strip(), maxsplit=1)[0].lower() for line in lines}
    packages -= {""}
    packages = {p for p in packages if not p.startswith("#")}
    assert not packages & {"boto3", "botocore"}, "the Lambda runtime provides boto3"
    heavy = {"strands-agents", "numpy"}
    if function == "OrchestratorFunction":
        assert heavy <= packages
    else:
        assert not packages & heavy
    assert {"aws-lambda-powertools", "pydantic", "pydantic-settings"} <= packages
    # The runtime's own urllib3 is 1.26, without the read1 the HTTP adapters bound answers with.
    assert "requests" not in packages or "urllib3" in packages


def _uses_powertools_tracer() -> bool:
    """Whether the application code imports Powertools' Tracer (or the X-Ray SDK it wraps)."""
    for path in (p for package in ("domain", "adapters", "handlers") for p in (ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            if module.startswith("aws_lambda_powertools") and (
                "tracing" in module or any(alias.name == "Tracer" for alias in node.names)
            ):
                return True
            if isinstance(node, ast.Import) and any(a.name.startswith("aws_xray_sdk") for a in node.names):
                return True
    return False


@pytest.mark.parametrize("function", sorted(DEPLOYED))
def test_powertools_tracer_extra_is_installed_only_for_a_tracer(function: str) -> None:
    # Given the function's pinned Powertools
    lines = (ROOT / "requirements" / f"{DEPLOYED[function][3]}.txt").read_text(encoding="utf-8").splitlines()
    (powertools,) = [line for line in lines if line.startswith("aws-lambda-powertools")]
    # Then the tracer extra (aws-xray-sdk and wrapt, 1.7 MB) is packaged exactly when the code traces with it:
    # Tracing: Active already has Lambda record each invocation's segment without it
    assert ("[tracer]" in powertools) == _uses_powertools_tracer(), powertools


@pytest.mark.parametrize("function", sorted(DEPLOYED))
def test_each_handler_traces_its_invocations_without_their_responses(function: str) -> None:
    # Given the function's handler module
    module = ast.parse((ROOT / "handlers" / f"{DEPLOYED[function][3]}.py").read_text(encoding="utf-8"))
    # Then a module-level Tracer (created once per container, patching boto3 and requests so each AWS and
    # HTTP call is a subsegment) wraps lambda_handler
    assert any(
        isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "Tracer"
        for node in module.body
    )
    (handler,) = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
    traced = [
        d
        for d in handler.decorator_list
        if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "capture_lambda_handler"
    ]
    assert traced, f"{function}'s lambda_handler is not traced"
    # And the response stays out of the trace: it can carry a ticket's or a decision's text
    keywords = {k.arg: k.value for k in traced[0].keywords}
    assert isinstance(keywords.get("capture_response"), ast.Constant) and keywords["capture_response"].value is False


# --- the artifact check `make lint-infra` runs after `sam build` ---------------------------------------------------


def _fake_build(build_dir: Path, *, extra: dict[str, str]) -> None:
    """A minimal `.aws-sam/build`: the built template and one artifact directory per function."""
    lines = ["Resources:"]
    for function, handler in FUNCTIONS.items():
        lines += [f"  {function}:", "    Type: AWS::Serverless::Function", "    Properties:"]
        lines += [f"      CodeUri: {function}", f"      Handler: {handler}"]
        module, _, name = handler.rpartition(".")
        files = {module.replace(".", "/") + ".py": f"def {name}(event, context):\n    return {{}}\n"}
        if function != "PreTrafficHookFunction":
            files["domain/taxonomy.toml"] = ""
        if function == "OrchestratorFunction":
            files |= {"adapters/classifier/default_model/metadata.json": "{}"}
            files |= {"adapters/classifier/static_vectors/minilm-l6-v2.npz": ""}
            files |= {"strands/__init__.py": "", "numpy/__init__.py": ""}
        for relative, content in (files | {k: v for k, v in extra.items() if k.startswith(function)}).items():
            path = build_dir / (relative if relative.startswith(function) else f"{function}/{relative}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    (build_dir / "template.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_artifact_rules_pass_a_clean_build(
    artifact_sizes_module: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_build(tmp_path, extra={})
    assert artifact_sizes_module.main(["--build-dir", str(tmp_path)]) == 0
    assert "OrchestratorFunction" in capsys.readouterr().out


def test_artifact_rules_catch_heavy_packages_outside_the_orchestrator(
    artifact_sizes_module: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_build(
        tmp_path, extra={"IngestionFunction/numpy/__init__.py": "", "TicketingUpdateFunction/botocore/x.py": ""}
    )
    assert artifact_sizes_module.main(["--build-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "carries numpy/" in out and "carries botocore/" in out
