"""A self-contained HTML evaluation report (inline SVG, no scripts, no network) that a support
manager can read at a glance: headline numbers first, then where the model goes wrong."""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

import numpy as np

from adapters.classifier.metrics import Evaluation

# Beyond this many labels the matrix's cells are too small to read or hover, and the page grows with
# the square of the labels: it shows the most confused ones instead.
MATRIX_MAX_LABELS = 40

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:32px auto;max-width:1100px;color:#1f2933}
h1{font-size:26px;margin-bottom:4px} h2{font-size:19px;margin-top:36px;border-bottom:1px solid #e4e7eb;padding-bottom:6px}
.sub{color:#616e7c;margin-top:0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin:20px 0}
.tile{border:1px solid #e4e7eb;border-radius:10px;padding:14px 16px;background:#f9fafb}
.tile .v{font-size:28px;font-weight:700} .tile .l{color:#616e7c;font-size:13px}
.good{color:#0f7b3f} .warn{color:#b7791f} .bad{color:#c53030}
.verdict{font-size:17px;background:#eef6ff;border-left:4px solid #2b6cb0;padding:12px 16px;border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{padding:5px 8px;border-bottom:1px solid #eef0f2;text-align:left}
th{background:#f5f7fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:24px} figure{margin:0} figcaption{color:#616e7c;font-size:13px}
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _grade(value: float | None, good: float, fair: float) -> str:
    if value is None:
        return ""
    return "good" if value >= good else "warn" if value >= fair else "bad"


def _line_chart(points: list[dict[str, Any]], threshold: float, width: int = 500, height: int = 300) -> str:
    pad, left = 44, 70
    inner_w, inner_h = width - left - pad, height - 2 * pad

    def xy(coverage: float, accuracy: float) -> tuple[float, float]:
        return left + coverage * inner_w, pad + (1 - accuracy) * inner_h

    usable = [p for p in points if p["coverage"] > 0]
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
        for i, (x, y) in enumerate(
            xy(p["coverage"], p["accuracy"]) for p in sorted(usable, key=lambda p: p["coverage"])
        )
    )
    # The curve's grid holds the threshold in force exactly; with nothing routed there, no dot.
    marker = next(p for p in points if p["threshold"] == threshold)
    dot = ""
    if marker["accuracy"] is not None:
        mx, my = xy(marker["coverage"], marker["accuracy"])
        dot = (
            f'<circle cx="{mx:.1f}" cy="{my:.1f}" r="6" fill="#c53030"/>'
            f'<text x="{mx + (-8 if mx > width / 2 else 8):.1f}" y="{my - 10:.1f}" font-size="12" fill="#c53030" '
            f'text-anchor="{"end" if mx > width / 2 else "start"}">'
            f"confidence ≥ {threshold:.2f}</text>"
        )
    grid = "".join(
        f'<line x1="{left}" x2="{width - pad}" y1="{pad + f * inner_h:.1f}" y2="{pad + f * inner_h:.1f}" stroke="#eef0f2"/>'
        f'<text x="{left - 6}" y="{pad + f * inner_h + 4:.1f}" font-size="11" text-anchor="end">{_pct(1 - f)}</text>'
        f'<text x="{left + f * inner_w:.1f}" y="{height - pad + 16}" font-size="11" text-anchor="middle">{_pct(f)}</text>'
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Accuracy versus coverage">{grid}'
        f'<path d="{path}" fill="none" stroke="#2b6cb0" stroke-width="2.5"/>{dot}'
        f'<text x="{width / 2}" y="{height - 6}" font-size="12" text-anchor="middle">share routed automatically</text>'
        f'<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 {height / 2})" text-anchor="middle">'
        "accuracy of those</text></svg>"
    )


def _histogram(evaluation: Evaluation, width: int = 500, height: int = 300, bins: int = 10) -> str:
    pad = 44
    edges = np.linspace(0, 1, bins + 1)
    conf, correct = evaluation.confidence, evaluation.correct
    right = np.histogram(conf[correct], bins=edges)[0]
    wrong = np.histogram(conf[~correct], bins=edges)[0]
    top = max(1, int((right + wrong).max()))
    bar_w = (width - 2 * pad) / bins
    bars = []
    for i in range(bins):
        x = pad + i * bar_w
        h_right = (height - 2 * pad) * right[i] / top
        h_wrong = (height - 2 * pad) * wrong[i] / top
        base = height - pad
        bars.append(
            f'<rect x="{x + 2:.1f}" y="{base - h_right:.1f}" width="{bar_w - 4:.1f}" height="{h_right:.1f}" fill="#38a169"/>'
            f'<rect x="{x + 2:.1f}" y="{base - h_right - h_wrong:.1f}" width="{bar_w - 4:.1f}" height="{h_wrong:.1f}" '
            'fill="#e53e3e"/>'
            f'<text x="{x + bar_w / 2:.1f}" y="{base + 16}" font-size="11" text-anchor="middle">{edges[i]:.1f}</text>'
        )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Confidence histogram">'
        + "".join(bars)
        + f'<text x="{width / 2}" y="{height - 6}" font-size="12" text-anchor="middle">model confidence</text>'
        f'<rect x="{width - 150}" y="10" width="12" height="12" fill="#38a169"/>'
        f'<text x="{width - 132}" y="20" font-size="12">right</text>'
        f'<rect x="{width - 90}" y="10" width="12" height="12" fill="#e53e3e"/>'
        f'<text x="{width - 72}" y="20" font-size="12">wrong</text></svg>'
    )


def _matrix_labels(evaluation: Evaluation, limit: int = MATRIX_MAX_LABELS) -> list[int]:
    """The indices of the labels the matrix shows: all of them up to `limit`, else the `limit` most
    often in a confusion (as the true label or the prediction), in the model's order."""
    if len(evaluation.labels) <= limit:
        return list(range(len(evaluation.labels)))
    confused: Counter[int] = Counter()
    tickets: Counter[int] = Counter()
    for (true, predicted), count in evaluation.confusion_counts().items():
        tickets[true] += count
        tickets[predicted] += count
        if true != predicted:
            confused[true] += count
            confused[predicted] += count
    ranked = sorted(tickets, key=lambda index: (-confused[index], -tickets[index], index))
    return sorted(ranked[:limit])


def _confusion_svg(evaluation: Evaluation, shown: list[int]) -> str:
    matrix = evaluation.confusion(shown)
    names = [evaluation.labels[index] for index in shown]
    size = len(shown)
    cell = max(6, min(40, 760 // max(size, 1)))
    label_space = 170  # at most MATRIX_MAX_LABELS rows: each is tall enough to carry its label's name
    totals = matrix.sum(axis=1, keepdims=True).clip(min=1)
    share = matrix / totals
    rects = []
    for i in range(size):
        for j in range(size):
            if matrix[i, j] == 0:
                continue
            colour = "43,108,176" if i == j else "197,48,48"
            rects.append(
                f'<rect x="{label_space + j * cell}" y="{label_space + i * cell}" width="{cell}" height="{cell}" '
                f'fill="rgba({colour},{0.15 + 0.85 * share[i, j]:.2f})"><title>true {html.escape(names[i])}'
                f" → predicted {html.escape(names[j])}: {matrix[i, j]}</title></rect>"
            )
            if size <= 12:
                rects.append(
                    f'<text x="{label_space + j * cell + cell / 2}" y="{label_space + i * cell + cell / 2 + 4}" '
                    f'font-size="12" text-anchor="middle">{matrix[i, j]}</text>'
                )
    labels = []
    for i, name in enumerate(names):
        # Long names are cut with an ellipsis; hovering shows the whole name.
        short = html.escape(name if len(name) <= 24 else name[:23] + "…")
        full = f"<title>{html.escape(name)}</title>"
        labels.append(
            f'<text x="{label_space - 6}" y="{label_space + i * cell + cell / 2 + 4}" font-size="11" '
            f'text-anchor="end">{full}{short}</text>'
            f'<text x="{label_space + i * cell + cell / 2}" y="{label_space - 6}" font-size="11" '
            f'transform="rotate(-45 {label_space + i * cell + cell / 2} {label_space - 6})">{full}{short}</text>'
        )
    total = label_space + size * cell + 4
    wide = total + 120  # room for the last rotated column label
    return (
        f'<svg viewBox="0 0 {wide} {total}" width="{min(wide, 900)}" role="img" aria-label="Confusion matrix">'
        f'<rect x="{label_space}" y="{label_space}" width="{size * cell}" height="{size * cell}" fill="none" '
        'stroke="#cbd2d9"/>' + "".join(rects) + "".join(labels) + "</svg>"
    )


def _top_confusions(evaluation: Evaluation, limit: int = 10) -> list[tuple[str, str, int]]:
    known = [
        (evaluation.labels[true], evaluation.labels[predicted], count)
        for (true, predicted), count in evaluation.confusion_counts().items()
        if true != predicted
    ]
    # A label the model does not know has no row in the matrix, but its tickets went wrong all the same.
    unknown = [(true, predicted, n) for (true, predicted), n in evaluation.unknown_confusions().items()]
    return sorted(known + unknown, key=lambda confusion: -confusion[2])[:limit]


def _matrix_note(evaluation: Evaluation, shown: list[int]) -> str:
    if len(shown) == len(evaluation.labels):
        return ""
    return (
        f'<p class="sub">Showing the {len(shown):,} labels most often confused, of the model\'s '
        f"{len(evaluation.labels):,}; the per-label table below has every label with tickets.</p>"
    )


def _unknown_note(summary: dict[str, Any]) -> str:
    if not summary["unknown_labels"]:
        return ""
    return (
        f'<p class="verdict">{summary["unknown_labels"]:,} ticket(s) carry labels the model was not trained on: '
        "they count as wrong, and appear below with recall 0.</p>"
    )


def render_report(evaluation: Evaluation, *, title: str, model_info: dict[str, Any]) -> str:
    s = evaluation.summary()
    auto_rate, auto_acc = s["auto_route_rate"], s["auto_route_accuracy"]
    routed = (
        f"<b>{_pct(auto_rate)}</b> of tickets would be routed automatically with <b>{_pct(auto_acc)}</b> accuracy; "
        f"the other {_pct(1 - auto_rate)} would go to manual review"
        if auto_acc is not None
        else "no ticket would be routed automatically; all would go to manual review"
    )
    # The figures are the model's labels: two labels of one team count as two, so the top two
    # labels are not the top two teams a reviewer is offered.
    verdict = (
        f"At confidence ≥ {evaluation.threshold:.2f}, {routed}. The model's top two labels hold the right "
        f"one {_pct(s['top2_accuracy'])} of the time overall."
    )
    tiles = [
        ("Accuracy", _pct(s["accuracy"]), _grade(s["accuracy"], 0.9, 0.8)),
        ("Routed automatically", _pct(auto_rate), _grade(auto_rate, 0.8, 0.6)),
        ("Accuracy when automatic", _pct(auto_acc), _grade(auto_acc, 0.95, 0.9)),
        ("Right label in top 2", _pct(s["top2_accuracy"]), _grade(s["top2_accuracy"], 0.95, 0.9)),
        ("Macro-F1", f"{s['macro_f1']:.3f}", _grade(s["macro_f1"], 0.9, 0.8)),
        ("Calibration error", f"{s['ece']:.3f}", "good" if s["ece"] <= 0.05 else "warn" if s["ece"] <= 0.1 else "bad"),
        ("Tickets per second", f"{s['tickets_per_second']:,.0f}" if s["tickets_per_second"] else "n/a", ""),
        ("Tickets evaluated", f"{s['n']:,}", ""),
    ]
    tile_html = "".join(
        f'<div class="tile"><div class="v {grade}">{value}</div><div class="l">{label}</div></div>'
        for label, value, grade in tiles
    )
    per_class = sorted(evaluation.per_class().items(), key=lambda kv: kv[1]["f1"])
    class_rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td class=num>{_pct(m['precision'])}</td><td class=num>{_pct(m['recall'])}"
        f"</td><td class=num>{m['f1']:.3f}</td><td class=num>{m['support']}</td></tr>"
        for label, m in per_class
        if m["support"] or m["predicted"]
    )
    confusion_rows = (
        "".join(
            f"<tr><td>{html.escape(t)}</td><td>{html.escape(p)}</td><td class=num>{n}</td></tr>"
            for t, p, n in _top_confusions(evaluation)
        )
        or "<tr><td colspan=3>No confusions.</td></tr>"
    )
    shown = _matrix_labels(evaluation)
    info_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in model_info.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">How well the routing model would have done on {s["n"]:,} labelled tickets.</p>{_unknown_note(s)}
<p class="verdict">{verdict}</p>
<div class="tiles">{tile_html}</div>
<h2>Automation versus accuracy</h2>
<div class="charts">
<figure>{_line_chart(evaluation.coverage_curve(), evaluation.threshold)}
<figcaption>Raising the confidence bar routes fewer tickets automatically, more accurately.
The red dot is the threshold in force.</figcaption></figure>
<figure>{_histogram(evaluation)}
<figcaption>How sure the model was, for tickets it got right (green) and wrong (red).</figcaption></figure>
</div>
<h2>Where it goes wrong</h2>
<table><tr><th>True label</th><th>Predicted as</th><th>Tickets</th></tr>{confusion_rows}</table>
<h2>Confusion matrix</h2>
<p class="sub">Rows are the true labels, columns the predictions; blue is right, red is wrong, darker is more.</p>
{_matrix_note(evaluation, shown)}{_confusion_svg(evaluation, shown)}
<h2>Per label (weakest first)</h2>
<table><tr><th>Label</th><th>Precision</th><th>Recall</th><th>F1</th><th>Tickets</th></tr>{class_rows}</table>
<h2>Model</h2>
<table>{info_rows}</table>
</body></html>
"""
