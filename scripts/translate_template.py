"""Translate template.yaml (SAM) to plain CloudFormation offline, and lint the result with cfn-lint.

cfn-lint (1.x) checks a SAM template against SAM's schemas without expanding it, so a reference to a resource that
only SAM generates (`TicketApiApiKey`, `<Function>DeploymentGroup`, `<Function>Aliaslive`, an EventBridge rule...)
is taken on trust. Expanding the template with samtranslator, exactly as the managed transform does, and linting the
output catches a dangling !Ref/!GetAtt/${} into generated resources before CloudFormation does.

Offline: no AWS credentials and no network. samtranslator only calls IAM to resolve managed-policy *names* in
`Policies:`; this template names none (every function has its own role), so the loader returns an empty map.

    python scripts/translate_template.py [--template template.yaml] [--output .aws-sam/translated.json] [--lint]

Exit status: 0 clean, 1 translation failed, 2 cfn-lint found problems in the translated template.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_OUTPUT = ROOT / ".aws-sam" / "translated.json"
DEFAULT_REGION = "us-east-1"

# cfn-lint checks skipped on the *translated* template only, each for resources we do not write ourselves.
#   W3005: SAM adds an explicit DependsOn next to a Ref on the usage plan and usage-plan key it generates.
TRANSLATED_IGNORE_CHECKS: tuple[str, ...] = ("W3005",)


class TranslationError(Exception):
    """samtranslator rejected the template; the message lists every problem it found."""


def load_sam_template(path: Path) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

    template = yaml_parse(path.read_text(encoding="utf-8"))
    if not isinstance(template, dict):
        raise TranslationError(f"{path}: not a YAML mapping")
    return template


def with_placeholder_code(template: dict[str, Any]) -> dict[str, Any]:
    """Point local CodeUri/ContentUri at a placeholder S3 object, as `sam validate` does before translating.

    The managed transform only ever sees S3 URIs (`sam package`/`sam deploy` upload the built code first). Only the
    version resources' logical ids depend on the value, through its hash.
    """
    for logical_id, resource in template.get("Resources", {}).items():
        if not isinstance(resource, dict):
            continue
        properties = resource.get("Properties")
        if not isinstance(properties, dict):
            continue
        for key in ("CodeUri", "ContentUri"):
            value = properties.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                properties[key] = f"s3://offline-translation/{logical_id}.zip"
    return template


def translate(
    template: Mapping[str, Any],
    *,
    region: str = DEFAULT_REGION,
    parameter_values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Expand `template` the way the AWS::Serverless-2016-10-31 transform does, without calling AWS."""
    from samtranslator.model.exceptions import InvalidDocumentException  # type: ignore[import-untyped]
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template  # type: ignore[import-untyped]

    # Offline there is no feature-toggle config: samtranslator warns once per toggle it looks up, then uses defaults.
    logging.getLogger("samtranslator.feature_toggle.feature_toggle").setLevel(logging.ERROR)
    fragment = with_placeholder_code(copy.deepcopy(dict(template)))
    values: dict[str, Any] = dict(parameter_values or {})
    to_py27_compatible_template(fragment, values)
    # samtranslator reads only `region_name` from the "boto session" (for AWS::Region and the partition). A stand-in
    # keeps botocore from resolving a profile: AWS_PROFILE naming a profile absent here would otherwise fail.
    translator = Translator(None, Parser(), boto_session=SimpleNamespace(region_name=region))
    try:
        translated = translator.translate(fragment, parameter_values=values, get_managed_policy_map=lambda: {})
    except InvalidDocumentException as exc:
        causes = "\n".join(f"  - {cause.message}" for cause in exc.causes)
        raise TranslationError(f"{exc.message}\n{causes}") from exc
    result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    return result


def lint(
    translated: Mapping[str, Any],
    *,
    region: str = DEFAULT_REGION,
    ignore_checks: Sequence[str] = TRANSLATED_IGNORE_CHECKS,
) -> list[str]:
    """cfn-lint findings (errors and warnings) on a translated template, one line each."""
    from cfnlint.api import ManualArgs  # type: ignore[import-untyped]
    from cfnlint.api import lint as cfn_lint

    args = ManualArgs(regions=[region], ignore_checks=list(ignore_checks))
    matches = cfn_lint(json.dumps(translated), config=args)
    return [f"{m.rule.id} {m.message} (Resources path: {'/'.join(str(p) for p in m.path)})" for m in matches]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--lint", action="store_true", help="also run cfn-lint on the translated template")
    args = parser.parse_args(argv)

    try:
        translated = translate(load_sam_template(args.template), region=args.region)
    except TranslationError as exc:
        print(f"{args.template}: SAM translation failed: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(translated, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    resources = translated.get("Resources", {})
    print(f"{args.template} -> {args.output}: {len(resources)} CloudFormation resources")

    if args.lint:
        findings = lint(translated, region=args.region)
        for finding in findings:
            print(f"{args.output}: {finding}", file=sys.stderr)
        if findings:
            return 2
        print(f"{args.output}: cfn-lint clean (ignored on generated resources: {', '.join(TRANSLATED_IGNORE_CHECKS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
