"""`ticket-router evaluate`: measure a trained model on labelled tickets before go-live."""

from __future__ import annotations

import argparse
import json
from typing import Any

from adapters.atomic_files import atomic_write, is_standard_output
from domain.errors import ConfigurationError
from handlers.commands.arguments import output_path_argument, path_argument, real_number
from handlers.labelled_data import (
    TextColumns,
    add_column_arguments,
    columns_as_trained,
    columns_from_args,
    columns_given,
    read_labelled,
    report_problems,
    require_known_labels,
    require_rows,
    text_columns_hint,
    warn_unless_as_trained,
)
from handlers.output_paths import check_writable, message_stream, model_files


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="measure a model on labelled tickets")
    parser.add_argument(
        "--model-dir",
        type=path_argument,
        help="trained model (default: ROUTER_MODEL_DIR, as route and backtest use, else the bundled telecom model)",
    )
    parser.add_argument("--data", type=path_argument, required=True, help="labelled tickets, CSV or JSON Lines")
    add_column_arguments(parser, text_default="the text columns the model was trained on, else text")
    parser.add_argument(
        "--threshold",
        type=real_number(0, 1),
        help="auto-route confidence, 0 to 1 (default: the taxonomy's manual_review_threshold, 0.70 as shipped)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--report", type=output_path_argument, help="write a self-contained HTML report here (- for standard output)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from adapters.classifier.loader import load_classifier
    from adapters.classifier.report import render_report
    from handlers.evaluation import auto_route_threshold, evaluate_classifier
    from handlers.settings import LocalSettings, load_settings

    # The model that route and backtest would use: measuring the bundled one instead, when its
    # labels are the data's too, would print its figures as the deployment's.
    args.model_dir = args.model_dir or load_settings(LocalSettings).router_model_dir
    if args.json and is_standard_output(args.report):
        raise ConfigurationError("--report - and --json would both go to standard output; send the report to a file")
    # With the report on stdout, what is said about it goes to stderr, out of the page's way.
    out = message_stream(args.report)
    if args.report:
        check_writable(
            args.report, "--report", replaced=True, keep_apart={"--data": args.data, **model_files(args.model_dir)}
        )
    classifier: Any = load_classifier(args.model_dir)
    columns = _text_columns(args, classifier)
    hint = "" if columns_given(args) else text_columns_hint(_OPTIONS, _classifier_metadata(classifier), _model(args))
    data = read_labelled(args.data, columns, args.label_column, text_hint=hint)
    report_problems(args.data, data.problems)
    require_rows(args.data, len(data.texts), data.problems)
    model_labels = list(classifier.labels)
    require_known_labels(
        data.labels,
        set(model_labels).__contains__,
        column=args.label_column,
        known=model_labels,
        known_as=f"labels of {args.model_dir or 'the bundled telecom model'}",
        hint="is --label-column the column the model was trained on, and --model-dir the model trained on it?",
    )
    evaluation = evaluate_classifier(
        classifier, data.texts, data.labels, threshold=auto_route_threshold(args.threshold)
    )
    summary = evaluation.summary()
    if args.report:
        metadata = getattr(classifier, "metadata", {}) or {}
        info = {
            "model": str(args.model_dir or "bundled telecom model"),
            "backend": metadata.get("backend", "?"),
            "labels": len(classifier.labels),
            "trained on": metadata.get("n_train", "?"),
            "training data sha256": str(metadata.get("training_data_sha256", "?"))[:16],
            "evaluated on": args.data.name,
            "text columns": columns.describe(),
        }
        page = render_report(evaluation, title=f"Routing model evaluation: {args.data.name}", model_info=info)
        with atomic_write(args.report, encoding="utf-8") as handle:
            handle.write(page)
    if args.json:
        payload = {**summary, "per_class": evaluation.per_class()}
        print(json.dumps(payload, indent=2))
        return 0
    print(f"Evaluated {summary['n']} tickets from {args.data}", file=out)
    for key in ("accuracy", "macro_f1", "top2_accuracy", "ece", "auto_route_rate", "auto_route_accuracy"):
        value = summary[key]
        print(f"  {key:<22} {'n/a (none routed automatically)' if value is None else f'{value:.4f}'}", file=out)
    print(f"  {'tickets_per_second':<22} {summary['tickets_per_second']}", file=out)
    if summary["unknown_labels"]:
        print(f"  {summary['unknown_labels']} ticket(s) carry labels the model does not know (counted wrong)", file=out)
    # A label of the model that the data neither holds nor got predicted has F1 0 by default, not
    # by any mistake: listing it would name labels never put to the test as the weakest.
    measured = [(label, m) for label, m in evaluation.per_class().items() if m["support"] or m["predicted"]]
    worst = sorted(measured, key=lambda kv: kv[1]["f1"])[:5]
    print("  weakest labels: " + ", ".join(f"{label} (F1 {m['f1']:.2f})" for label, m in worst), file=out)
    if args.report:
        print(f"Report written to {'standard output' if is_standard_output(args.report) else args.report}", file=out)
    return 0


_OPTIONS = "--text-column COLUMN, or --subject-column and --body-column"


def _classifier_metadata(classifier: Any) -> dict[str, Any]:
    return getattr(classifier, "metadata", {}) or {}


def _model(args: argparse.Namespace) -> str:
    return str(args.model_dir or "the bundled telecom model")


def _text_columns(args: argparse.Namespace, classifier: Any) -> TextColumns:
    """The columns given, else those the model was trained on: a model trained on subject and body
    and measured on one column alone is measured on other text than it will route."""
    metadata = _classifier_metadata(classifier)
    model = _model(args)
    if not columns_given(args) and (trained := columns_as_trained(metadata, model)) is not None:
        return trained
    columns = columns_from_args(args)
    warn_unless_as_trained(metadata, model, columns, "evaluated")
    return columns
