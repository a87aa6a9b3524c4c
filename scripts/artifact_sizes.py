"""Report each built Lambda artifact's size (unzipped and zipped) and enforce the packaging rules.

Reads `.aws-sam/build/template.yaml` (written by `sam build`) to find every function's artifact directory.

    python scripts/artifact_sizes.py [--build-dir .aws-sam/build]

Rules (exit status 1 when one is broken):
  - every function stays within Lambda's 250 MB unzipped limit; the orchestrator within 100 MB;
  - ingestion and ticketing update carry neither strands-agents nor numpy;
  - no function carries boto3/botocore (the runtime provides them);
  - the handler module is in the artifact and defines the handler function;
  - the orchestrator carries the classifier artifact and its static vector table, and every function but the hook the taxonomy.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1024 * 1024
LAMBDA_UNZIPPED_LIMIT = 250 * MB

RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


@dataclass(frozen=True)
class Rules:
    max_unzipped: int = LAMBDA_UNZIPPED_LIMIT
    forbidden: tuple[str, ...] = RUNTIME_PROVIDED
    required_files: tuple[str, ...] = ()


RULES: dict[str, Rules] = {
    "IngestionFunction": Rules(
        forbidden=(*RUNTIME_PROVIDED, "strands", "numpy"),
        required_files=("domain/taxonomy.toml",),
    ),
    "OrchestratorFunction": Rules(
        max_unzipped=100 * MB,
        required_files=(
            "domain/taxonomy.toml",
            "adapters/classifier/default_model/metadata.json",
            "adapters/classifier/static_vectors/minilm-l6-v2.npz",
            "strands/__init__.py",
            "numpy/__init__.py",
        ),
    ),
    "TicketingUpdateFunction": Rules(
        forbidden=(*RUNTIME_PROVIDED, "strands", "numpy"),
        required_files=("domain/taxonomy.toml",),
    ),
    "PreTrafficHookFunction": Rules(max_unzipped=1 * MB),
}


@dataclass
class Artifact:
    name: str
    path: Path
    handler: str
    files: int = 0
    unzipped: int = 0
    zipped: int = 0
    problems: list[str] = field(default_factory=list)


def measure(path: Path) -> tuple[int, int, int]:
    """(file count, bytes unzipped, bytes of a deflated zip) for the directory, as `sam package` would zip it."""
    files = unzipped = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                file = Path(root, name)
                if file.is_symlink() or not file.is_file():
                    continue
                files += 1
                unzipped += file.stat().st_size
                archive.write(file, file.relative_to(path).as_posix())
    return files, unzipped, buffer.tell()


def check(artifact: Artifact, rules: Rules) -> None:
    if artifact.unzipped > rules.max_unzipped:
        artifact.problems.append(f"{artifact.unzipped / MB:.1f} MB unzipped exceeds {rules.max_unzipped / MB:.0f} MB")
    for package in rules.forbidden:
        if (artifact.path / package).exists():
            artifact.problems.append(f"carries {package}/, which it must not")
    for relative in rules.required_files:
        if not (artifact.path / relative).is_file():
            artifact.problems.append(f"{relative} is missing")
    module, _, function = artifact.handler.rpartition(".")
    source = artifact.path / (module.replace(".", "/") + ".py")
    if not source.is_file():
        artifact.problems.append(f"handler module {source.relative_to(artifact.path)} is missing")
    elif f"def {function}(" not in source.read_text(encoding="utf-8"):
        artifact.problems.append(f"{source.relative_to(artifact.path)} does not define {function}()")


def load_functions(build_dir: Path) -> dict[str, dict[str, Any]]:
    from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

    template = yaml_parse((build_dir / "template.yaml").read_text(encoding="utf-8"))
    return {
        name: resource.get("Properties", {})
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    args = parser.parse_args(argv)
    build_dir: Path = args.build_dir
    if not (build_dir / "template.yaml").is_file():
        print(f"{build_dir}/template.yaml not found: run sam build first", file=sys.stderr)
        return 1

    artifacts = []
    for name, properties in sorted(load_functions(build_dir).items()):
        artifact = Artifact(name, build_dir / str(properties.get("CodeUri", name)), str(properties.get("Handler", "")))
        if not artifact.path.is_dir():
            artifact.problems.append(f"artifact directory {artifact.path} is missing")
        else:
            artifact.files, artifact.unzipped, artifact.zipped = measure(artifact.path)
            check(artifact, RULES.get(name, Rules()))
        artifacts.append(artifact)

    print(f"{'function':<26} {'files':>6} {'unzipped':>11} {'zipped':>11}  status")
    for artifact in artifacts:
        status = "ok" if not artifact.problems else "; ".join(artifact.problems)
        print(
            f"{artifact.name:<26} {artifact.files:>6} {artifact.unzipped / MB:>8.1f} MB "
            f"{artifact.zipped / MB:>8.1f} MB  {status}"
        )
    unknown = sorted(set(RULES) - {a.name for a in artifacts})
    if unknown:
        print(f"functions expected but not built: {', '.join(unknown)}", file=sys.stderr)
    return 1 if unknown or any(a.problems for a in artifacts) else 0


if __name__ == "__main__":
    sys.exit(main())
