"""Embedding backends on the same inputs: texts/s and tokens/s of torch, onnx and onnx-int8,
and the quality of the ONNX vectors against torch's (cosine, top-10 neighbour overlap).

    .venv/bin/python bench/embedder_backends_bench.py [--texts 512] [--rounds 2]

Inputs: SciFact passages (title + abstract, mostly 150-256+ tokens, like ingestion chunks)
from ../shared/data, else lines of this repository's docs. Each backend embeds them once
to warm up, then `--rounds` timed times through `SentenceEmbedder.embed` (token-sorted
batches of 64, as in the pipeline). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from gql_server.embedding.embedder import MODEL_MAX_TOKENS, get_embedder

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"


def load_texts(limit: int) -> tuple[str, list[str]]:
    if SCIFACT.exists():
        texts = []
        with SCIFACT.open(encoding="utf-8") as handle:
            for _, line in zip(range(limit), handle, strict=False):
                record = json.loads(line)
                texts.append(f"{record['title']}\n{record['text']}")
        return "scifact passages", texts
    lines = [
        line.strip()
        for path in sorted((ROOT / "docs").glob("*.md"))
        for line in path.read_text().splitlines()
    ]
    return "docs lines", [line for line in lines if len(line) >= 30][:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    source, texts = load_texts(args.texts)
    results: dict[str, dict[str, float]] = {}
    reference = None
    tokens = 0
    for backend in ("torch", "onnx", "onnx-int8"):
        embedder = get_embedder(backend=backend)
        tokens = sum(min(count, MODEL_MAX_TOKENS) for count in embedder.count_tokens_batch(texts))
        vectors = embedder.embed(texts)  # warm-up
        start = time.perf_counter()
        for _ in range(args.rounds):
            embedder.embed(texts)
        seconds = (time.perf_counter() - start) / args.rounds
        entry = {
            "texts_per_second": round(len(texts) / seconds, 1),
            "tokens_per_second": round(tokens / seconds),
        }
        if reference is None:
            reference = vectors
        else:
            cosines = np.sum(vectors * reference, axis=1)
            similarities = [v @ v.T for v in (reference, vectors)]
            for matrix in similarities:
                np.fill_diagonal(matrix, -np.inf)
            left, right = (np.argsort(-matrix, axis=1)[:, :10] for matrix in similarities)
            entry["mean_cosine_to_torch"] = round(float(cosines.mean()), 6)
            entry["min_cosine_to_torch"] = round(float(cosines.min()), 6)
            entry["top10_overlap_with_torch"] = round(
                float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(left, right, strict=True)])), 4
            )
        results[backend] = entry
        print(backend, entry, flush=True)
    print(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
                "inputs": {"source": source, "texts": len(texts), "tokens_capped_at_256": tokens},
                "backends": results,
            }
        )
    )


if __name__ == "__main__":
    main()
