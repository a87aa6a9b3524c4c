"""The evaluation report's page, rendered from an in-memory evaluation."""

from __future__ import annotations

import numpy as np

from adapters.classifier.metrics import Evaluation
from adapters.classifier.report import render_report

LONG = "Service Outages and Maintenance"


def test_long_label_names_are_cut_with_an_ellipsis_and_kept_whole_on_hover() -> None:
    # Given an evaluation whose labels include one longer than the matrix has room for
    labels = ["Billing", LONG]
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    evaluation = Evaluation(labels=labels, y_true=np.array([0, 1, 1]), probabilities=probabilities, seconds=0.01)

    # When the report is rendered
    page = render_report(evaluation, title="helpdesk", model_info={})

    # Then the matrix shows the cut name with an ellipsis, and the whole name as its tooltip
    assert "Service Outages and Mai…</text>" in page
    assert f"<title>{LONG}</title>" in page
    assert "Service Outages and Main</text>" not in page


def test_top_two_accuracy_is_told_as_the_models_labels_not_the_teams_a_reviewer_is_offered() -> None:
    # Given a model whose second label is right for one ticket it got wrong
    labels = ["Billing Dispute", "Refund Request", "Network Outage"]
    probabilities = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    evaluation = Evaluation(labels=labels, y_true=np.array([0, 1]), probabilities=probabilities, seconds=0.01)
    # When the report is rendered
    page = render_report(evaluation, title="helpdesk", model_info={})
    # Then the figure is named for what it counts, labels: two labels of one team are not two teams
    assert "Right label in top 2" in page and "top two labels hold the right one 100.0%" in page
    assert "Right team in top 2" not in page and "top two suggestions" not in page


def test_a_model_with_thousands_of_labels_gets_a_matrix_of_its_most_confused_labels() -> None:
    # Given a 3,000-label model that gets one ticket of each label right, calls intent 17 intent 2500
    # seven times, and intent 42 intent 17 three times
    size = 3000
    labels = [f"intent {i}" for i in range(size)]
    truth = [*range(size), *[17] * 7, *[42] * 3]
    predicted = [*range(size), *[2500] * 7, *[17] * 3]
    probabilities = np.full((len(truth), size), 0.1 / size, dtype=np.float32)
    probabilities[np.arange(len(truth)), predicted] += 0.9
    evaluation = Evaluation(labels=labels, y_true=np.array(truth), probabilities=probabilities, seconds=0.01)

    # When the report is rendered
    page = render_report(evaluation, title="helpdesk", model_info={})

    # Then the confusions are counted right, the matrix shows only the most confused labels and says so,
    # and the per-label table still has every label
    assert "<tr><td>intent 17</td><td>intent 2500</td><td class=num>7</td></tr>" in page
    assert "Showing the 40 labels most often confused, of the model's 3,000" in page
    matrix = page[page.index('aria-label="Confusion matrix"') :].split("</svg>")[0]
    assert "true intent 17 → predicted intent 2500: 7" in matrix
    assert "true intent 42 → predicted intent 17: 3" in matrix
    assert matrix.count('text-anchor="end"><title>') == 40
    assert page.count("<tr><td>intent ") == size + 2
