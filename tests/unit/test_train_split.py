"""train's validation split: each label's share held out, and no text on both sides of it."""

from __future__ import annotations

import re

from handlers.commands.train import stratified_split


def alike(text: str) -> str:
    """A ticket's words, its ids, case and punctuation aside."""
    return " ".join(re.findall(r"[a-z]+", text.lower()))


def template_tickets() -> tuple[list[str], list[str]]:
    # Each label: a template ticket sent 12 times (its ids, case and punctuation aside) and 8 own texts
    texts: list[str] = []
    labels: list[str] = []
    for label, template in (("billing", "Invoice {} is wrong, please check"), ("outage", "Site {} DOWN!")):
        for i in range(12):
            texts.append(template.format(1000 + i) if i % 2 else template.format(2000 + i).lower())
            labels.append(label)
        for i in range(8):
            texts.append(f"{label} question number {'abcdefgh'[i]}")
            labels.append(label)
    return texts, labels


def test_identical_texts_stay_on_one_side_of_the_split() -> None:
    # Given tickets of which many are the same template text
    texts, labels = template_tickets()
    for seed in range(20):
        # When they are split
        train, validation = stratified_split(texts, labels, 0.25, seed)
        # Then no text held out is one trained on, and every ticket is on exactly one side
        assert not {alike(texts[i]) for i in train} & {alike(texts[i]) for i in validation}
        assert sorted(train + validation) == list(range(len(texts)))
        # And each label still has a share held out, of its own texts
        assert {labels[i] for i in validation} == {"billing", "outage"}


def test_a_split_without_duplicates_holds_out_each_labels_share() -> None:
    texts = [f"ticket {word}" for word in "abcdefghijklmnopqrst"]
    labels = ["a"] * 10 + ["b"] * 10
    _, validation = stratified_split(texts, labels, 0.2, 13)
    assert len(validation) == 4
    assert sorted(labels[i] for i in validation) == ["a", "a", "b", "b"]


def test_texts_with_no_latin_words_are_not_all_taken_for_one_text() -> None:
    # Given tickets the n-gram model reads no words in
    texts = ["請幫我退款", "我的卡丟了", "無法登入", "網路斷線", "帳單錯誤", "密碼重設"]
    from handlers.commands.train import text_key

    # Then they are told apart by their own text
    assert len({text_key(text) for text in texts}) == len(texts)


def test_copies_that_disagree_on_the_label_are_never_held_out() -> None:
    # Given a text labelled A once and B once, B's only rows, among A's own texts
    texts = ["x", "x", "y", "z", "w", "v"]
    labels = ["A", "B", "A", "A", "A", "A"]
    for seed in range(20):
        # When they are split, then both copies are trained on, and so is every label
        train, _ = stratified_split(texts, labels, 0.5, seed)
        assert {0, 1} <= set(train)
        assert {labels[i] for i in train} == {"A", "B"}
