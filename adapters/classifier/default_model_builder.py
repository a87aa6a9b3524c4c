"""Rebuild the bundled telecom classifier from the examples shipped beside it (`make model`).

The artifact is committed so that inference never needs scikit-learn; a test checks that it was
built from the training file as it is now.
"""

from __future__ import annotations

import json
from pathlib import Path

from adapters.classifier.ngram import DEFAULT_MODEL_DIR
from adapters.classifier.training import TrainingExample, fit_ngram_classifier

TRAINING_FILE = Path(__file__).parent / "data" / "telecom_training.jsonl"


def ticket_text(subject: str, description: str) -> str:
    # Must match Ticket.text so that training and routing see the same string.
    return f"{subject}\n{description}" if subject else description


def load_training_examples(path: Path = TRAINING_FILE) -> list[TrainingExample]:
    examples = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                examples.append(TrainingExample(ticket_text(row["subject"], row["description"]), row["category"]))
    return examples


def build(model_dir: Path = DEFAULT_MODEL_DIR) -> None:
    examples = load_training_examples()
    classifier = fit_ngram_classifier(examples, metadata={"name": "telecom-default", "source": TRAINING_FILE.name})
    classifier.save(model_dir, classifier.metadata)
    print(f"wrote {model_dir} from {len(examples)} examples")


if __name__ == "__main__":
    build()
