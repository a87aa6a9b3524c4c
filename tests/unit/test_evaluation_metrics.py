"""The figures `evaluate`, `train` and the report give, checked against scikit-learn's definitions
(computed by hand here, so the suite needs no scikit-learn)."""

from __future__ import annotations

import numpy as np

from adapters.classifier.metrics import Evaluation, classification_metrics
from adapters.classifier.report import render_report

LABELS = ["Billing", "Network", "Account"]


def an_evaluation(probabilities: list[list[float]], y_true: list[int], threshold: float = 0.70) -> Evaluation:
    return Evaluation(
        labels=LABELS,
        y_true=np.array(y_true),
        probabilities=np.array(probabilities),
        seconds=0.01,
        threshold=threshold,
    )


def test_a_class_predicted_but_never_the_answer_counts_in_macro_f1_and_shows_in_the_report() -> None:
    # Given five right Billing and five right Network answers, and one Billing ticket called Account
    rows = [[0.9, 0.05, 0.05]] * 5 + [[0.05, 0.9, 0.05]] * 5 + [[0.1, 0.1, 0.8]]
    evaluation = an_evaluation(rows, [0] * 5 + [1] * 5 + [0])

    # When macro-F1 is computed
    # Then Account counts at F1 0 (F1 Billing 10/11, Network 1, Account 0), as classification_metrics has it
    expected = (10 / 11 + 1.0 + 0.0) / 3
    assert abs(evaluation.macro_f1() - expected) < 1e-9
    assert abs(classification_metrics(evaluation.probabilities, evaluation.y_true)["macro_f1"] - expected) < 1e-4
    # And the report lists Account, the class with the false positive
    assert "<td>Account</td>" in render_report(evaluation, title="t", model_info={})


def test_nothing_routed_automatically_has_no_accuracy_rather_than_zero() -> None:
    # Given answers no more confident than 0.6, judged at the 0.70 threshold
    evaluation = an_evaluation([[0.6, 0.3, 0.1], [0.2, 0.6, 0.2]], [0, 1])

    # When summarised and reported
    summary = evaluation.summary()
    page = render_report(evaluation, title="t", model_info={})

    # Then the automatic share is 0 and its accuracy is unknown, not 0%; the report says so
    assert (summary["auto_route_rate"], summary["auto_route_accuracy"]) == (0.0, None)
    assert "no ticket would be routed automatically" in page


def test_a_confidence_the_router_reports_as_0_70_counts_as_auto_routed() -> None:
    # Given an answer at 0.69996, which the classifier reports (and the router compares) as 0.7000
    evaluation = an_evaluation([[0.69996, 0.2, 0.10004]], [0])

    # When coverage at 0.70 is computed / Then the ticket is routed automatically, as in production
    assert evaluation.coverage_at(0.70) == (1.0, 1.0)


def test_the_coverage_curve_holds_the_threshold_in_force_exactly() -> None:
    # Given a threshold off the curve's 0.05 grid, and a ticket exactly at 0.70
    evaluation = an_evaluation([[0.70, 0.2, 0.1], [0.75, 0.2, 0.05], [0.5, 0.3, 0.2]], [0, 0, 0], threshold=0.73)

    # When the curve is computed
    curve = {point["threshold"]: point for point in evaluation.coverage_curve()}

    # Then it has a point at 0.73 agreeing with the summary, and its 0.70 point counts the ticket at 0.70
    assert abs(curve[0.73]["coverage"] - 1 / 3) < 1e-9
    assert evaluation.summary()["auto_route_rate"] == round(1 / 3, 4)
    assert abs(curve[0.7]["coverage"] - 2 / 3) < 1e-9


def test_tickets_with_labels_the_model_does_not_know_count_in_macro_f1_and_show_in_the_report() -> None:
    # Given five right Billing and five right Network answers, and one ticket labelled "Refunds",
    # a label the model was never trained on, which it called Billing
    rows = [[0.9, 0.05, 0.05]] * 5 + [[0.05, 0.9, 0.05]] * 5 + [[0.8, 0.1, 0.1]]
    evaluation = Evaluation(
        labels=LABELS,
        y_true=np.array([0] * 5 + [1] * 5 + [-1]),
        probabilities=np.array(rows),
        seconds=0.01,
        unknown_true_labels=("Refunds",),
    )
    # When macro-F1 is computed
    # Then Refunds is a class at F1 0, and Billing pays for the false positive, as scikit-learn counts
    # it: F1 Billing 10/11, Network 1, Refunds 0 (Account, never seen nor predicted, is left out)
    assert abs(evaluation.macro_f1() - (10 / 11 + 1.0 + 0.0) / 3) < 1e-9
    # And the report names it, in the per-label table and among the confusions
    page = render_report(evaluation, title="t", model_info={})
    assert "<td>Refunds</td><td class=num>0.0%</td>" in page
    assert "<tr><td>Refunds</td><td>Billing</td><td class=num>1</td></tr>" in page
    assert "1 ticket(s) carry labels the model was not trained on" in page


def test_of_labels_tied_at_the_top_classify_routes_to_the_one_evaluate_counts() -> None:
    from adapters.classifier.ngram import FeaturizerConfig, NgramClassifier
    from handlers.evaluation import evaluate_classifier

    # Given an n-gram model of 20 labels that knows no word of the text, and whose biases tie
    # labels 8 and 12 at the top (an arrangement numpy's default sort puts 12 first)
    bias = [0.71, 0.93, 0.11, 0.73, 0.93, 0.97, 0.01, 0.86, 2.0, 0.96]
    bias += [0.15, 0.97, 2.0, 0.82, 0.48, 0.23, 0.8, 0.92, 0.27, 0.54]
    labels = [f"label-{i}" for i in range(20)]
    model = NgramClassifier(
        labels=labels,
        config=FeaturizerConfig(n_features=1 << 10),
        feature_ids=np.array([0]),
        idf=np.ones(1),
        weights=np.zeros((1, 20)),
        bias=np.array(bias),
    )
    # When the text is classified, and evaluated as labelled with the answer classify gave
    routed = model.classify("zzz").primary_category
    evaluation = evaluate_classifier(model, ["zzz"], [routed])
    # Then evaluate counts the routing right: both picked the same label
    assert routed == "label-8"
    assert evaluation.accuracy() == 1.0
