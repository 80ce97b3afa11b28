"""Calibrating the extractive answerer's evidence thresholds on training data only.

    .venv/bin/python bench/abstention_calibration.py [--data-dir D] [--queries 150] [--distractors 450]

On-topic questions: SciFact *train* claims (../shared/data/scifact, qrels/train.tsv), over a
corpus of their relevant abstracts plus `--distractors` other abstracts (fixed seed), ingested
through the product's pipeline (bench/retrieval_bench.py's `ingest_corpus`). Off-topic
questions: the general-knowledge list below, written for this calibration and disjoint from
bench/answer_bench.py's test questions (which are never used for tuning).

For each question it runs what chat runs: `retrieve_passages` (HYBRID, k=5), the question's
IDF weights (`gql_server.rag.evidence`), and `gql_server.llm.extractive.assess` on the
passages, records the features (best unit's coverage, top dense similarity, phrase), then
sweeps the thresholds and reports, for the defaults and the best grid point (highest
min(on-topic answered, off-topic abstained)), both rates. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.retrieval_bench import ensure_model, ensure_user, ingest_corpus, log, read_jsonl, read_qrels

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"

OFF_TOPIC_CALIBRATION = [
    "What is the capital of Australia?",
    "How many players are on a football team?",
    "Who painted the Mona Lisa?",
    "What is the best way to cook rice?",
    "When did the Berlin Wall fall?",
    "How do I change a flat tyre on a bicycle?",
    "Which planet has the most moons?",
    "What is the tallest building in the world?",
    "How do you say thank you in Japanese?",
    "Who wrote Pride and Prejudice?",
    "What time zone is New York in?",
    "How long does it take to fly from London to Paris?",
    "What are the rules of chess castling?",
    "Where is the Eiffel Tower?",
    "How do I reset my router password?",
    "What is the exchange rate of the euro to the dollar?",
    "Who won the last football world cup?",
    "How many strings does a violin have?",
    "What should I pack for a beach holiday?",
    "How do I make a sourdough starter?",
    "What is the population of Canada?",
    "Which language is spoken in Brazil?",
    "How deep is the Mariana Trench?",
    "Who invented the telephone?",
    "What is the speed limit on German motorways?",
    "How do I knit a scarf?",
    "What does a plumber charge per hour?",
    "Which is the longest river in Europe?",
    "How do I write a cover letter for a job?",
    "What is the recipe for lemonade?",
    "Who is the author of the Harry Potter books?",
    "How many days are there in a leap year?",
    "What is the boiling point of water at sea level in Fahrenheit?",
    "How do I train a puppy to sit?",
    "What are the colours of the French flag?",
    "Where can I buy cheap train tickets?",
    "What is the plot of Romeo and Juliet?",
    "How do I file my taxes online?",
    "Which mountain is the highest in Africa?",
    "How do I clean a cast iron pan?",
    "What is the difference between a violin and a viola?",
    "Who was the first person on the moon?",
    "How many calories are in a banana?",
    "What is the national animal of Scotland?",
    "How do I fix a leaking tap?",
    "What are the opening hours of the Louvre?",
    "How does a bitcoin wallet work?",
    "Which city hosted the 2012 Olympic Games?",
    "What is the best time to plant tulips?",
    "How do I convert Celsius to Fahrenheit?",
    "Who composed the Four Seasons?",
    "What is a good name for a goldfish?",
    "How do I play the guitar chord G major?",
    "What is the main ingredient of guacamole?",
    "When is the next solar eclipse?",
    "How do I get a driving licence?",
    "What is the capital of Canada?",
    "Who directed the film Jaws?",
    "How tall is a giraffe?",
    "Which ocean is the largest?",
]


async def features_of(
    sessionmaker: Any, user: Any, model_id: Any, questions: list[str], embeddings: Any
) -> list[dict[str, Any]]:
    from gql_server.chat.generation import QUESTION_SEARCHED_CHARACTERS
    from gql_server.llm.base import ContextPassage
    from gql_server.llm.extractive import assess
    from gql_server.rag.citations import location_label
    from gql_server.rag.evidence import question_term_weights
    from gql_server.rag.retrieval import RetrievalMode, retrieve_passages

    rows = []
    for index, question in enumerate(questions):
        async with sessionmaker() as session:
            passages = await retrieve_passages(
                session,
                user,
                model_id,
                question,
                k=5,
                query_embedding=embeddings[index],
                mode=RetrievalMode.HYBRID,
            )
            weights = await question_term_weights(
                session, question[:QUESTION_SEARCHED_CHARACTERS], [model_id]
            )
        context = [
            ContextPassage(
                number,
                p.document_title,
                p.text,
                location_label(p.page_start, p.page_end, p.row_start, p.row_end),
                float(p.score),
                p.similarity,
            )
            for number, p in enumerate(passages, start=1)
        ]
        assessment = assess(question, context, weights)
        rows.append({"question": question, **assessment.features(), "evidence": assessment.evidence.value})
    return rows


def rates(rows_on: list[dict[str, Any]], rows_off: list[dict[str, Any]], thresholds: Any) -> dict[str, float]:
    def strong(row: dict[str, Any]) -> bool:
        similarity = row["similarity"]
        return bool(
            row["phrase"]
            or row["coverage"] >= thresholds.strong_coverage
            or (
                row["coverage"] >= thresholds.similar_coverage
                and similarity is not None
                and similarity >= thresholds.similar_passage
            )
        )

    answered = sum(strong(row) for row in rows_on) / max(len(rows_on), 1)
    abstained = sum(not strong(row) for row in rows_off) / max(len(rows_off), 1)
    return {"on_topic_answered": round(answered, 3), "off_topic_abstained": round(abstained, 3)}


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from gql_server.db.embedded import EmbeddedPostgres
    from gql_server.db.migrate import upgrade_to_head
    from gql_server.llm.extractive import DEFAULT_THRESHOLDS, EvidenceThresholds

    scifact = Path(arguments.scifact)
    qrels = read_qrels(scifact / "qrels" / "train.tsv")
    queries = [query for query in read_jsonl(scifact / "queries.jsonl") if str(query["_id"]) in qrels]
    rng = random.Random(arguments.seed)
    queries = rng.sample(queries, min(arguments.queries, len(queries)))
    relevant = {doc for query in queries for doc in qrels[str(query["_id"])]}
    corpus_all = read_jsonl(scifact / "corpus.jsonl")
    others = [entry for entry in corpus_all if str(entry["_id"]) not in relevant]
    corpus = [entry for entry in corpus_all if str(entry["_id"]) in relevant] + rng.sample(
        others, min(arguments.distractors, len(others))
    )

    data_dir = Path(arguments.data_dir)
    server = EmbeddedPostgres(data_dir / "pg")
    server.start()
    try:
        if "1 row" not in server.psql("SELECT 1 FROM pg_database WHERE datname = 'calibration';"):
            server.psql("CREATE DATABASE calibration;")
        url = server.url("calibration")
        await asyncio.to_thread(upgrade_to_head, url)
        engine = create_async_engine(url, pool_size=2)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        user = await ensure_user(sessionmaker)
        model_id = await ensure_model(sessionmaker, "calibration-scifact")
        ingestion = await ingest_corpus(sessionmaker, corpus, model_id)

        from gql_server.embedding.embedder import get_embedder

        on_questions = [str(query["text"]) for query in queries]
        embedder = get_embedder()
        log(f"embedding {len(on_questions) + len(OFF_TOPIC_CALIBRATION)} questions…")
        on_vectors = await asyncio.to_thread(embedder.embed, on_questions)
        off_vectors = await asyncio.to_thread(embedder.embed, OFF_TOPIC_CALIBRATION)
        rows_on = await features_of(sessionmaker, user, model_id, on_questions, on_vectors)
        rows_off = await features_of(sessionmaker, user, model_id, OFF_TOPIC_CALIBRATION, off_vectors)
        await engine.dispose()
    finally:
        server.stop()

    grid = []
    for strong_coverage, similar_passage, similar_coverage in itertools.product(
        [0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8],
        [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 1.1],
        [0.2, 0.3, 0.4, 0.5],
    ):
        thresholds = EvidenceThresholds(strong_coverage, similar_passage, similar_coverage)
        figures = rates(rows_on, rows_off, thresholds)
        grid.append((min(figures.values()), sum(figures.values()), thresholds, figures))
    grid.sort(key=lambda item: (-item[0], -item[1]))
    best = grid[0]
    wrong_off = [row for row in rows_off if row["evidence"] == "STRONG"]
    wrong_on = [row for row in rows_on if row["evidence"] != "STRONG"]
    return {
        "corpus_documents": len(corpus),
        "on_topic_questions": len(rows_on),
        "off_topic_questions": len(rows_off),
        "ingestion": ingestion,
        "defaults": {
            "thresholds": DEFAULT_THRESHOLDS.__dict__,
            **rates(rows_on, rows_off, DEFAULT_THRESHOLDS),
        },
        "best": {"thresholds": best[2].__dict__, **best[3]},
        "top_grid": [{"thresholds": item[2].__dict__, **item[3]} for item in grid[:8]],
        "off_topic_answered_examples": wrong_off[:6],
        "on_topic_abstained_examples": wrong_on[:6],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scifact", default=str(SCIFACT))
    parser.add_argument("--data-dir", default=".data/abstention-calibration")
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--distractors", type=int, default=450)
    parser.add_argument("--seed", type=int, default=7)
    print(json.dumps(asyncio.run(run(parser.parse_args())), default=str))


if __name__ == "__main__":
    main()
