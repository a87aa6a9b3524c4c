"""Build the static token-vector table from all-MiniLM-L6-v2 (needs the `minilm-train` extra).

    python -m adapters.classifier.static_vectors_builder        # or: make static-vectors

Each WordPiece token is encoded alone as `[CLS] token [SEP]` and the three outputs mean-pooled,
as all-MiniLM-L6-v2 pools sentences. The table is then centred (the shared direction carries no
meaning and dominates sums), reduced by PCA, rows normalised, and stored as int8 with a scale per
row. Only tokens that can appear after accent folding (ASCII) are kept. Deterministic: the same
weights give the same file, so its SHA-256 identifies the table models were trained with.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from adapters.classifier.static_vectors import DEFAULT_TABLE, TABLE_SUFFIX, load_table, table_path

DEFAULT_DIMS = 256
SPECIAL_TOKENS = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}


def _kept(token: str) -> bool:
    return token.isascii() and token not in SPECIAL_TOKENS and not token.startswith("[unused")


def encode_vocabulary(batch_size: int = 512) -> tuple[list[str], np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    from adapters.classifier.minilm_training import base_model_dir

    base = base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModel.from_pretrained(base).eval()
    vocabulary = tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))
    kept_ids = [i for i, token in enumerate(vocabulary) if _kept(token)]
    outputs = np.zeros((len(kept_ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(kept_ids), batch_size):
            ids = kept_ids[start : start + batch_size]
            input_ids = torch.tensor([[tokenizer.cls_token_id, i, tokenizer.sep_token_id] for i in ids])
            hidden = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).last_hidden_state
            outputs[start : start + len(ids)] = hidden.mean(dim=1).numpy()
    return [vocabulary[i] for i in kept_ids], outputs


def compress(vectors: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre, PCA to `dims`, unit rows; int8 codes and a float32 scale per row."""
    centred = vectors - vectors.mean(axis=0)
    if dims < centred.shape[1]:
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ components[:dims].T
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    scale = np.abs(unit).max(axis=1) / 127.0
    codes = np.round(unit / scale[:, None]).astype(np.int8)
    return codes, scale.astype(np.float32)


def build(name: str = DEFAULT_TABLE, dims: int = DEFAULT_DIMS, target: Path | None = None) -> Path:
    vocabulary, vectors = encode_vocabulary()
    codes, scale = compress(vectors, dims)
    path = target or table_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, vocabulary=np.array("\n".join(vocabulary)), codes=codes, scale=scale)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=DEFAULT_TABLE)
    parser.add_argument("--dims", type=int, default=DEFAULT_DIMS)
    parser.add_argument("--output", type=Path, help=f"default: adapters/classifier/static_vectors/NAME{TABLE_SUFFIX}")
    args = parser.parse_args()
    path = build(args.name, args.dims, args.output)
    table = load_table(args.name) if args.output is None else None
    identity = f", content sha256 {table.sha256}" if table else ""
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB{identity})")


if __name__ == "__main__":
    main()
