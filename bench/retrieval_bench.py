"""Retrieval quality and latency of ragql's own pipeline and retrieval.

    .venv/bin/python bench/retrieval_bench.py BEIR_DIR QUERIES QRELS [--data-dir D] [--limit-queries N]

1. Ingests the BEIR corpus (BEIR_DIR/corpus.jsonl) into one model, each corpus entry a
   document ("title\\n\\ntext" as a text file) through the product's pipeline
   (`workers.pipeline.process.process_document`: parsing, semantic chunking capped at
   256 tokens, all-MiniLM-L6-v2 embeddings), stored as `document_chunks` rows whose BM25
   statistics the database triggers maintain. The database lives in --data-dir, so a
   second run (other queries) reuses the ingested corpus.
2. Runs `gql_server.rag.retrieval.retrieve_passages` for every query (query embedding
   computed once per query, outside the timed part) in DENSE, LEXICAL (BM25) and HYBRID
   mode; a document's rank is that of its best chunk. Prints nDCG@10, recall@10, recall@100.
3. Scale: adds 200,000 synthetic chunks over 20 models (vectors: real corpus chunk
   embeddings plus Gaussian noise, renormalised; text: 2–4 sentences sampled from the
   corpus), kept in --data-dir as well; reports retrieve_passages latency p50/p95 (HYBRID,
   k=10, excluding the query embedding) for queries against random models, and filtered
   recall@10 of the HNSW search against exact search (numpy over the model's vectors).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import gql_server.rag.retrieval as retrieval_module
from gql_server.db.embedded import EmbeddedPostgres
from gql_server.db.engine import create_engine
from gql_server.db.migrate import upgrade_to_head
from gql_server.db.models import (
    Document,
    DocumentChunk,
    DocumentKind,
    DocumentStatus,
    RagModel,
    Role,
    User,
)
from gql_server.rag.retrieval import (
    RetrievalMode,
    RetrievalParameters,
    retrieve_passages,
)
from gql_server.storage.chunk_partitions import drop_orphan_chunk_partitions

DATABASE = "retrieval_bench"
# Passages per query for the quality figures: recall@100 needs 100 of them, above the API's
# cap of 50 (MAX_K), which the bench raises for itself. Each ranked list is then read 100
# deep (depth = max(configured depth, k)); the latency part uses k = 10 as chat does.
QUALITY_K = 100
retrieval_module.MAX_K = max(retrieval_module.MAX_K, QUALITY_K)
# Document aggregation of the fused passage list (reported next to best-chunk): a
# document scores its best passage's fused score plus DECAY^n times its n-th further one.
AGGREGATION_DECAY = 0.1
SCALE_MODEL_PREFIX = "synthetic-"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- BEIR files ---------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with path.open(encoding="utf-8") as file:
        for line in file:
            parts = line.strip().split("\t")
            if len(parts) < 3 or parts[0] == "query-id":
                continue
            qrels[parts[0]][parts[1]] = int(parts[2])
    return dict(qrels)


def ndcg_at(ranked: list[str], relevant: dict[str, int], cutoff: int) -> float:
    dcg = sum(
        (2 ** relevant.get(doc, 0) - 1) / math.log2(position + 2)
        for position, doc in enumerate(ranked[:cutoff])
    )
    ideal = sorted(relevant.values(), reverse=True)[:cutoff]
    idcg = sum((2**grade - 1) / math.log2(position + 2) for position, grade in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], cutoff: int) -> float:
    positives = {doc for doc, grade in relevant.items() if grade > 0}
    if not positives:
        return 0.0
    return len(positives & set(ranked[:cutoff])) / len(positives)


# --- ingestion ----------------------------------------------------------------------------


async def search(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    model_id: uuid.UUID,
    query: dict[str, Any],
    query_embeddings: dict[str, Any],
    mode: RetrievalMode,
    parameters: RetrievalParameters,
    *,
    k: int = QUALITY_K,
) -> list[Any]:
    """One retrieval of a SciFact query row, in a transaction of its own as the product runs it."""
    async with sessionmaker.begin() as session:
        return await retrieve_passages(
            session,
            user,
            model_id,
            query["text"],
            k=k,
            query_embedding=query_embeddings[str(query["_id"])],
            mode=mode,
            parameters=parameters,
        )


async def ensure_user(sessionmaker: async_sessionmaker[AsyncSession]) -> User:
    async with sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.email == "bench@example.com"))
        if user is None:
            user = User(email="bench@example.com", display_name="bench", password_hash="x", role=Role.ADMIN)
            session.add(user)
            await session.flush()
        session.expunge(user)
        return user


async def ensure_model(sessionmaker: async_sessionmaker[AsyncSession], name: str) -> uuid.UUID:
    async with sessionmaker.begin() as session:
        model_id = await session.scalar(select(RagModel.id).where(RagModel.name == name))
        if model_id is None:
            model = RagModel(name=name)
            session.add(model)
            await session.flush()
            model_id = model.id
        return model_id


async def ingest_corpus(
    sessionmaker: async_sessionmaker[AsyncSession],
    corpus: list[dict[str, Any]],
    model_id: uuid.UUID,
    shard: int = 0,
    shard_count: int = 1,
) -> dict[str, Any]:
    """Each corpus entry becomes a READY document with its chunks; resumes where it stopped."""
    from gql_server.embedding.embedder import get_embedder
    from workers.pipeline.process import process_document
    from workers.pipeline.sniff import DocumentKind as PipelineKind

    async with sessionmaker() as session:
        done = set(
            (await session.execute(select(Document.filename).where(Document.model_id == model_id))).scalars()
        )
    todo = [
        entry
        for index, entry in enumerate(corpus)
        if str(entry["_id"]) not in done and index % shard_count == shard
    ]
    if not todo:
        return {"ingested_now": 0, "seconds": 0.0}
    log(f"ingesting {len(todo)} of {len(corpus)} corpus documents through the pipeline…")
    embedder = get_embedder()
    started = time.perf_counter()
    chunk_total = 0
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "document.txt"

        def process(entry: dict[str, Any]) -> tuple[str, list[Any]]:
            content = (entry.get("title", "").strip() + "\n\n" + entry.get("text", "").strip()).strip() + "\n"
            path.write_text(content, encoding="utf-8")
            processing = process_document(path, PipelineKind.TEXT, embedder)
            chunks = [chunk for batch in processing.batches() for chunk in batch.chunks]
            return content, chunks

        batch_size = 100
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            processed = await asyncio.to_thread(lambda batch=batch: [process(entry) for entry in batch])
            async with sessionmaker.begin() as session:
                for entry, (content, chunks) in zip(batch, processed, strict=True):
                    document = Document(
                        model_id=model_id,
                        filename=str(entry["_id"]),
                        title=entry.get("title") or str(entry["_id"]),
                        kind=DocumentKind.TEXT,
                        size_bytes=len(content.encode()),
                        sha256=hashlib.sha256(content.encode()).hexdigest(),
                        status=DocumentStatus.READY,
                        progress=1.0,
                        chunk_count=len(chunks),
                    )
                    session.add(document)
                    await session.flush()
                    session.add_all(
                        DocumentChunk(
                            document_id=document.id,
                            model_id=model_id,
                            chunk_index=chunk.chunk_index,
                            text=chunk.text,
                            context=chunk.context,
                            page_start=chunk.page_start,
                            page_end=chunk.page_end,
                            row_start=chunk.line_start,
                            row_end=chunk.line_end,
                            token_count=chunk.token_count,
                            embedding=chunk.embedding,
                        )
                        for chunk in chunks
                    )
                    chunk_total += len(chunks)
            elapsed = time.perf_counter() - started
            log(f"  {start + len(batch)}/{len(todo)} documents, {chunk_total} chunks, {elapsed:.0f}s")
    return {"ingested_now": len(todo), "seconds": round(time.perf_counter() - started, 1)}


# --- quality ------------------------------------------------------------------------------


async def _filenames(sessionmaker: async_sessionmaker[AsyncSession], model_id: uuid.UUID) -> dict[Any, str]:
    """{document id: file name} of the model's documents (qrels name corpus entries by file)."""
    async with sessionmaker() as session:
        return dict(
            (
                await session.execute(
                    select(Document.id, Document.filename).where(Document.model_id == model_id)
                )
            ).all()
        )


async def evaluate_quality(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    model_id: uuid.UUID,
    queries: list[dict[str, Any]],
    qrels: dict[str, dict[str, int]],
    parameters: RetrievalParameters,
    query_embeddings: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    filename_of = await _filenames(sessionmaker, model_id)
    results: dict[str, dict[str, float]] = {}
    decayed: dict[str, list[float]] = {"ndcg@10": [], "recall@10": [], "recall@100": []}
    for mode in (RetrievalMode.DENSE, RetrievalMode.LEXICAL, RetrievalMode.HYBRID):
        ndcg10: list[float] = []
        recall10: list[float] = []
        recall100: list[float] = []
        for query in queries:
            relevant = qrels[str(query["_id"])]
            passages = await search(sessionmaker, user, model_id, query, query_embeddings, mode, parameters)
            named = [(filename_of[passage.document_id], passage.score) for passage in passages]
            ranked = aggregate_documents(named, 0.0)  # a document ranks where its best chunk does
            ndcg10.append(ndcg_at(ranked, relevant, 10))
            recall10.append(recall_at(ranked, relevant, 10))
            recall100.append(recall_at(ranked, relevant, 100))
            if mode is RetrievalMode.HYBRID:
                aggregated = aggregate_documents(named, AGGREGATION_DECAY)
                decayed["ndcg@10"].append(ndcg_at(aggregated, relevant, 10))
                decayed["recall@10"].append(recall_at(aggregated, relevant, 10))
                decayed["recall@100"].append(recall_at(aggregated, relevant, 100))
        results[mode.value.lower()] = {
            "ndcg@10": round(statistics.fmean(ndcg10), 4),
            "recall@10": round(statistics.fmean(recall10), 4),
            "recall@100": round(statistics.fmean(recall100), 4),
        }
        log(f"  {mode.value:8s} {results[mode.value.lower()]}")
    results["hybrid_doc_aggregated"] = {
        name: round(statistics.fmean(values), 4) for name, values in decayed.items()
    }
    log(
        f"  HYBRID, documents = best + {AGGREGATION_DECAY}^n x further passages: {results['hybrid_doc_aggregated']}"
    )
    return results


# --tune-phrases without --variant: the bigram list's weight in the fusion and the share of
# the query's bigram weight a chunk must hold.
PHRASE_VARIANTS = [
    {"proximity_weight": weight, "proximity_min_share": share}
    for weight, share in ((0.0, 0.5), (0.5, 0.5), (1.0, 0.5), (0.5, 0.7), (1.0, 0.7), (1.0, 0.9))
]


def parse_variant(text: str) -> dict[str, float]:
    """`bm25_k1=0.9,bm25_b=0.4` → overrides of RetrievalParameters' fields."""
    fields = {field.name: field.type for field in dataclasses.fields(RetrievalParameters)}
    variant: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in fields:
            raise SystemExit(f"--variant: unknown parameter {name!r} (one of {', '.join(fields)})")
        variant[name] = int(value) if fields[name] in (int, "int") else float(value)
    return variant


async def tune_phrases(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    model_id: uuid.UUID,
    queries: list[dict[str, Any]],
    qrels: dict[str, dict[str, int]],
    query_embeddings: dict[str, np.ndarray],
    variants: list[dict[str, float]],
) -> list[dict[str, float]]:
    """HYBRID nDCG@10 through the real `retrieve_passages` (every list, the phrase evidence
    included) for each variant of the default parameters."""
    filename_of = await _filenames(sessionmaker, model_id)
    rows: list[dict[str, float]] = []
    for variant in variants:
        parameters = dataclasses.replace(RetrievalParameters(), **variant)
        scores = []
        for query in queries:
            passages = await search(
                sessionmaker, user, model_id, query, query_embeddings, RetrievalMode.HYBRID, parameters
            )
            ranked = aggregate_documents([(filename_of[p.document_id], p.score) for p in passages], 0.0)
            scores.append(ndcg_at(ranked, qrels[str(query["_id"])], 10))
        rows.append({**variant, "ndcg@10": round(statistics.fmean(scores), 4)})
        log(f"  {variant or 'defaults'}: HYBRID nDCG@10 {rows[-1]['ndcg@10']:.4f}")
    return rows


def aggregate_documents(passages: list[tuple[str, float]], decay: float) -> list[str]:
    """Documents best first; each scores Σ decay^n · score over its passages in rank order
    (n = 0 for its best one), so decay 0 ranks a document at its best passage."""
    scores: dict[str, float] = {}
    seen: dict[str, int] = defaultdict(int)
    order: list[str] = []
    for name, score in passages:
        if name not in scores:
            scores[name] = 0.0
            order.append(name)
        scores[name] += score * decay ** seen[name]
        seen[name] += 1
    if decay == 0.0:
        return order
    position = {name: index for index, name in enumerate(order)}
    return sorted(order, key=lambda name: (-scores[name], position[name]))


# --- tuning (train queries only) ---------------------------------------------------------


def _document_ranking(passages: list[tuple[int, str, float]]) -> list[str]:
    ranked: list[str] = []
    for _, name, _ in passages:
        if name not in ranked:
            ranked.append(name)
    return ranked


def _fuse(
    dense: list[tuple[int, str, float]],
    lexical: list[tuple[int, str, float]],
    rrf_k: float,
    dense_weight: float,
    aggregation: str,
) -> list[str]:
    if aggregation == "document":  # fuse document rankings (a document ranks at its best chunk)
        scores: dict[str, float] = defaultdict(float)
        for ranking, weight in ((_document_ranking(dense), dense_weight), (_document_ranking(lexical), 1.0)):
            for rank, name in enumerate(ranking, start=1):
                scores[name] += weight / (rrf_k + rank)
        return [name for name, _ in sorted(scores.items(), key=lambda pair: -pair[1])]
    chunk_scores: dict[int, float] = defaultdict(float)
    document_of: dict[int, str] = {}
    for ranking, weight in ((dense, dense_weight), (lexical, 1.0)):
        for rank, (chunk_id, name, _) in enumerate(ranking, start=1):
            chunk_scores[chunk_id] += weight / (rrf_k + rank)
            document_of[chunk_id] = name
    ordered = sorted(chunk_scores.items(), key=lambda pair: -pair[1])
    return _document_ranking([(chunk_id, document_of[chunk_id], score) for chunk_id, score in ordered])


async def tune(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    model_id: uuid.UUID,
    queries: list[dict[str, Any]],
    qrels: dict[str, dict[str, int]],
    query_embeddings: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    """Grid over BM25 k1/b, RRF k, dense weight and aggregation, from rankings fetched once."""
    filename_of = await _filenames(sessionmaker, model_id)

    async def ranking(query: dict[str, Any], mode: RetrievalMode, parameters: RetrievalParameters) -> Any:
        passages = await search(sessionmaker, user, model_id, query, query_embeddings, mode, parameters)
        return [(p.chunk_id, filename_of.get(p.document_id, str(p.document_id)), p.score) for p in passages]

    base = RetrievalParameters()
    dense = {str(q["_id"]): await ranking(q, RetrievalMode.DENSE, base) for q in queries}
    rows: list[dict[str, Any]] = []
    for k1, b in ((0.9, 0.4), (1.2, 0.75)):
        parameters = RetrievalParameters(bm25_k1=k1, bm25_b=b)
        lexical = {str(q["_id"]): await ranking(q, RetrievalMode.LEXICAL, parameters) for q in queries}
        bm25_only = statistics.fmean(
            ndcg_at(_document_ranking(lexical[str(q["_id"])]), qrels[str(q["_id"])], 10) for q in queries
        )
        log(f"  BM25 k1={k1} b={b}: nDCG@10 {bm25_only:.4f}")
        for depth in (30, 100):
            for rrf_k in (5, 10, 30, 60):
                for dense_weight in (0.6, 0.8, 1.0, 1.2, 1.5):
                    for aggregation in ("chunk", "document"):
                        scores = [
                            ndcg_at(
                                _fuse(
                                    dense[str(q["_id"])][:depth],
                                    lexical[str(q["_id"])][:depth],
                                    rrf_k,
                                    dense_weight,
                                    aggregation,
                                ),
                                qrels[str(q["_id"])],
                                10,
                            )
                            for q in queries
                        ]
                        rows.append(
                            {
                                "k1": k1,
                                "b": b,
                                "depth": depth,
                                "rrf_k": rrf_k,
                                "dense_weight": dense_weight,
                                "aggregation": aggregation,
                                "ndcg@10": round(statistics.fmean(scores), 4),
                                "bm25_ndcg@10": round(bm25_only, 4),
                            }
                        )
    rows.sort(key=lambda row: -row["ndcg@10"])
    for row in rows[:15]:
        log(f"  {row}")
    return rows


# --- scale --------------------------------------------------------------------------------


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


async def ensure_scale_data(
    engine: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    source_model_id: uuid.UUID,
    total_chunks: int,
    model_count: int,
    seed: int = 7,
) -> list[uuid.UUID]:
    model_ids = [
        await ensure_model(sessionmaker, f"{SCALE_MODEL_PREFIX}{index:02d}") for index in range(model_count)
    ]
    per_model = total_chunks // model_count
    async with sessionmaker() as session:
        existing = (
            await session.scalar(
                select(text("count(*)"))
                .select_from(DocumentChunk)
                .where(DocumentChunk.model_id.in_(model_ids))
            )
        ) or 0
    if existing >= per_model * model_count:
        return model_ids
    log(f"building {per_model * model_count} synthetic chunks over {model_count} models…")
    started = time.perf_counter()
    async with sessionmaker.begin() as session:
        await session.execute(text("DELETE FROM documents WHERE model_id = ANY(:ids)"), {"ids": model_ids})
        rows = (
            await session.execute(
                select(DocumentChunk.text, DocumentChunk.embedding).where(
                    DocumentChunk.model_id == source_model_id
                )
            )
        ).all()
    base_vectors = np.asarray([np.asarray(row[1], dtype=np.float32) for row in rows], dtype=np.float32)
    sentences = [sentence for row in rows for sentence in _SENTENCE_END.split(row[0]) if len(sentence) > 20]
    rng = np.random.default_rng(seed)
    raw = await engine.raw_connection()
    try:
        connection = raw.driver_connection
        await register_vector(connection)
        await connection.execute("DROP INDEX IF EXISTS ix_document_chunks_embedding_hnsw")
        for model_index, model_id in enumerate(model_ids):
            documents_per_model = per_model // 20
            document_ids = [uuid.uuid4() for _ in range(documents_per_model)]
            await connection.executemany(
                "INSERT INTO documents (id, model_id, filename, title, kind, size_bytes, sha256, status, progress,"
                " chunk_count, warnings, file_kept, attempts, created_at, updated_at)"
                " VALUES ($1, $2, $3, $3, 'TEXT', 1, $4, 'READY', 1, 20, '[]', false, 0, now(), now())",
                [
                    (document_id, model_id, f"synthetic-{model_index}-{index}", uuid.uuid4().hex)
                    for index, document_id in enumerate(document_ids)
                ],
            )
            picks = rng.integers(0, len(base_vectors), size=per_model)
            noise = rng.normal(0.0, 0.05, size=(per_model, base_vectors.shape[1])).astype(np.float32)
            vectors = base_vectors[picks] + noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            records = []
            for index in range(per_model):
                sentence_count = int(rng.integers(2, 5))
                chosen = rng.integers(0, len(sentences), size=sentence_count)
                records.append(
                    (
                        document_ids[index // 20],
                        model_id,
                        index % 20,
                        " ".join(sentences[position] for position in chosen),
                        128,
                        vectors[index],
                    )
                )
            await connection.copy_records_to_table(
                "document_chunks",
                records=records,
                columns=["document_id", "model_id", "chunk_index", "text", "token_count", "embedding"],
            )
            log(f"  model {model_index + 1}/{model_count} loaded ({time.perf_counter() - started:.0f}s)")
        log("  rebuilding the HNSW index…")
        await connection.execute("SET maintenance_work_mem = '2GB'")
        await connection.execute("SET max_parallel_maintenance_workers = 2")
        await connection.execute(
            "CREATE INDEX ix_document_chunks_embedding_hnsw ON document_chunks"
            " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        await connection.execute("ANALYZE documents")
        await connection.execute("ANALYZE document_chunks")
    finally:
        # Its vector codec (register_vector) would break SQLAlchemy's pgvector binding.
        raw.invalidate()
    log(f"  scale data ready in {time.perf_counter() - started:.0f}s")
    return model_ids


async def add_empty_models(sessionmaker: async_sessionmaker[AsyncSession], count: int) -> list[uuid.UUID]:
    """`count` models without documents, each with its (empty) chunk partition: many
    partitions must not slow a retrieval that names its model. Removed after measuring."""
    ids = [uuid.uuid4() for _ in range(count)]
    if ids:
        log(f"adding {count} empty models (and their chunk partitions)…")
        async with sessionmaker.begin() as session:
            for model_id in ids:
                session.add(RagModel(id=model_id, name=f"empty-{model_id.hex[:16]}"))
    return ids


async def measure_scale(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    model_ids: list[uuid.UUID],
    queries: list[dict[str, Any]],
    query_embeddings: dict[str, np.ndarray],
    parameters: RetrievalParameters,
    samples: int,
) -> dict[str, Any]:
    rng = random.Random(11)
    chosen = [rng.choice(queries) for _ in range(samples)]
    targets = [rng.choice(model_ids) for _ in range(samples)]
    latencies: dict[str, list[float]] = {mode.value: [] for mode in RetrievalMode}
    recalls: list[float] = []
    exact_vectors: dict[uuid.UUID, tuple[np.ndarray, np.ndarray]] = {}
    async with sessionmaker() as session:
        for model_id in set(targets):
            rows = (
                await session.execute(
                    select(DocumentChunk.id, DocumentChunk.embedding).where(
                        DocumentChunk.model_id == model_id
                    )
                )
            ).all()
            exact_vectors[model_id] = (
                np.asarray([row[0] for row in rows]),
                np.asarray([np.asarray(row[1], dtype=np.float32) for row in rows], dtype=np.float32),
            )
    # Warm-up, as on a server that has been answering: every model, every mode, with
    # queries other than the measured ones (caches, plans, the models' index pages).
    warm_queries = [query for query in queries if query not in chosen] or queries
    for index, model_id in enumerate(model_ids):
        for mode in RetrievalMode:
            for repeat in range(3):
                query = warm_queries[(index * 9 + repeat) % len(warm_queries)]
                await search(sessionmaker, user, model_id, query, query_embeddings, mode, parameters, k=10)
    modes = list(RetrievalMode)
    for position, (query, model_id) in enumerate(zip(chosen, targets, strict=True)):
        embedding = query_embeddings[str(query["_id"])]
        # The first mode to run a query reads its pages for the others: rotate the order.
        for mode in modes[position % 3 :] + modes[: position % 3]:
            async with sessionmaker.begin() as session:
                started = time.perf_counter()
                passages = await retrieve_passages(
                    session,
                    user,
                    model_id,
                    query["text"],
                    k=10,
                    query_embedding=embedding,
                    mode=mode,
                    parameters=parameters,
                )
                latencies[mode.value].append((time.perf_counter() - started) * 1000)
            if mode is RetrievalMode.DENSE:
                ids, vectors = exact_vectors[model_id]
                exact = set(ids[np.argsort(-(vectors @ embedding))[:10]].tolist())
                recalls.append(len(exact & {passage.chunk_id for passage in passages}) / 10)

    def percentile(values: list[float], fraction: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)

    return {
        "queries": samples,
        "latency_ms": {
            mode.lower(): {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
            for mode, values in latencies.items()
        },
        "filtered_recall@10": round(statistics.fmean(recalls), 4),
    }


# --- main ---------------------------------------------------------------------------------


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    beir_dir = Path(arguments.beir_dir)
    data_dir = Path(arguments.data_dir)
    corpus = read_jsonl(beir_dir / "corpus.jsonl")
    qrels = read_qrels(Path(arguments.qrels))
    queries = [query for query in read_jsonl(Path(arguments.queries)) if str(query["_id"]) in qrels]
    if arguments.limit_queries:
        queries = queries[: arguments.limit_queries]

    server = EmbeddedPostgres(data_dir / "pg")
    server.start()
    try:
        if "1 row" not in server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';"):
            server.psql(f"CREATE DATABASE {DATABASE};")
        url = server.url(DATABASE)
        await asyncio.to_thread(upgrade_to_head, url)
        engine = create_engine(url, pool_size=4)  # the product's engine settings
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        user = await ensure_user(sessionmaker)
        model_id = await ensure_model(sessionmaker, f"beir-{beir_dir.name}")
        if arguments.skip_quality:  # scale figures only, over whatever corpus is ingested so far
            queries = queries[: max(arguments.scale_samples, 50)]
            ingestion = {"skipped": True}
        elif arguments.tune or arguments.tune_phrases:  # over whatever is ingested
            ingestion = {"skipped": True}
        else:
            shard, shard_count = (int(part) for part in arguments.ingest_shard.split("/"))
            ingestion = await ingest_corpus(sessionmaker, corpus, model_id, shard, shard_count)
            if arguments.ingest_only:
                return {"ingestion": ingestion}
        async with sessionmaker() as session:
            chunk_count = await session.scalar(
                select(text("count(*)")).select_from(DocumentChunk).where(DocumentChunk.model_id == model_id)
            )

        from gql_server.embedding.embedder import get_embedder

        log(f"embedding {len(queries)} queries…")
        embedder = get_embedder()
        vectors = await asyncio.to_thread(embedder.embed, [query["text"] for query in queries])
        query_embeddings = {str(query["_id"]): vectors[index] for index, query in enumerate(queries)}

        if len(arguments.variant) > 1 and not arguments.tune_phrases:
            raise SystemExit("--variant: one variant at a time, except with --tune-phrases")
        parameters = dataclasses.replace(
            RetrievalParameters(), **(parse_variant(arguments.variant[0]) if arguments.variant else {})
        )
        log(f"evaluating {len(queries)} queries on {len(corpus)} documents / {chunk_count} chunks…")
        if arguments.tune_phrases:
            variants = [parse_variant(text) for text in arguments.variant] or PHRASE_VARIANTS
            rows = await tune_phrases(
                sessionmaker, user, model_id, queries, qrels, query_embeddings, variants
            )
            await engine.dispose()
            return {"tuning": rows}
        if arguments.tune:
            rows = await tune(sessionmaker, user, model_id, queries, qrels, query_embeddings)
            await engine.dispose()
            return {"tuning": rows[:20]}
        quality: dict[str, dict[str, float]] = {}
        if not arguments.skip_quality:
            quality = await evaluate_quality(
                sessionmaker, user, model_id, queries, qrels, parameters, query_embeddings
            )

        figures: dict[str, Any] = {
            "corpus": beir_dir.name,
            "queries_file": Path(arguments.queries).name,
            "qrels_file": Path(arguments.qrels).name,
            "queries": len(queries),
            "documents": len(corpus),
            "chunks": chunk_count,
            "ingestion": ingestion,
            "parameters": {**dataclasses.asdict(parameters), "quality_k": QUALITY_K},
            "quality": quality,
        }
        if not arguments.skip_scale:
            scale_models = await ensure_scale_data(
                engine, sessionmaker, model_id, arguments.scale_chunks, arguments.scale_models
            )
            extra = await add_empty_models(sessionmaker, arguments.extra_empty_models)
            try:
                log("measuring latency and filtered recall at scale…")
                scale = await measure_scale(
                    sessionmaker,
                    user,
                    scale_models,
                    queries,
                    query_embeddings,
                    parameters,
                    arguments.scale_samples,
                )
                async with sessionmaker() as session:
                    scale["table_chunks"] = await session.scalar(
                        select(text("count(*)")).select_from(DocumentChunk)
                    )
                    scale["chunk_partitions"] = await session.scalar(
                        text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'document_chunks'::regclass")
                    )
            finally:
                if extra:
                    async with sessionmaker.begin() as session:
                        await session.execute(text("DELETE FROM models WHERE id = ANY(:ids)"), {"ids": extra})
                    await drop_orphan_chunk_partitions(engine)
            scale["extra_empty_models"] = len(extra)
            scale["synthetic_chunks"] = arguments.scale_chunks
            scale["models"] = arguments.scale_models
            figures["scale"] = scale
        await engine.dispose()
        return figures
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("beir_dir")
    parser.add_argument("queries")
    parser.add_argument("qrels")
    parser.add_argument("--data-dir", default="bench-data/retrieval")
    parser.add_argument("--limit-queries", type=int, default=0)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument(
        "--ingest-shard",
        default="0/1",
        help="i/n: ingest only corpus entries with index %% n == i (parallel runs)",
    )
    parser.add_argument("--ingest-only", action="store_true")
    parser.add_argument(
        "--tune", action="store_true", help="grid-search the fusion settings (train queries!)"
    )
    parser.add_argument(
        "--tune-phrases",
        action="store_true",
        help="HYBRID nDCG@10 over a grid of the bigram list's weight and share (train queries!)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="parameters other than the defaults, e.g. 'bm25_k1=0.9,bm25_b=0.4' ('' = the "
        "defaults); repeatable with --tune-phrases, which evaluates each",
    )
    parser.add_argument("--skip-quality", action="store_true", help="no ingestion, no quality figures")
    parser.add_argument("--scale-chunks", type=int, default=200_000)
    parser.add_argument("--scale-models", type=int, default=20)
    parser.add_argument("--scale-samples", type=int, default=300)
    parser.add_argument(
        "--extra-empty-models",
        type=int,
        default=0,
        help="measure scale with this many more (empty) models, i.e. chunk partitions; removed afterwards",
    )
    arguments = parser.parse_args()
    figures = asyncio.run(run(arguments))
    if arguments.ingest_only or arguments.tune or arguments.tune_phrases:
        print(json.dumps(figures))
        return
    quality = figures["quality"]
    print()
    print(f"{'mode':10s} {'nDCG@10':>8s} {'R@10':>8s} {'R@100':>8s}")
    for mode, values in quality.items():
        print(f"{mode:10s} {values['ndcg@10']:8.4f} {values['recall@10']:8.4f} {values['recall@100']:8.4f}")
    if "scale" in figures:
        scale = figures["scale"]
        for mode, values in scale["latency_ms"].items():
            print(f"latency {mode:8s} p50 {values['p50']:.2f} ms  p95 {values['p95']:.2f} ms")
        print(f"filtered recall@10 vs exact: {scale['filtered_recall@10']:.4f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
