"""How distinctive each word of a question is in a model's corpus: BM25 IDF from the statistics tables.

The extractive answerer (gql_server/llm/extractive.py) weighs the question's words by
these, so a code such as "CFOL029" found in three chunks outweighs "message" found in
thousands, and a question whose rare words occur nowhere in the passages reads as weakly
supported. The tables are the ones retrieval keeps (migration 0002, trigger-maintained),
so this is one statement: the question's lexemes from PostgreSQL's own english parser
(`ts_debug`, the same normalisation the index uses) joined with their document frequency
in the model's scope and the session's attachments.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_server.llm.extractive import idf

_WEIGHTS = text(
    """
    WITH tokens AS (
        SELECT DISTINCT lower(token) AS token, lexemes[1] AS lexeme
        FROM ts_debug('english'::regconfig, :question)
        WHERE lexemes IS NOT NULL AND cardinality(lexemes) > 0
    )
    SELECT t.token,
           coalesce((SELECT sum(s.doc_freq) FROM bm25_term_stats s
                     WHERE s.lexeme = t.lexeme AND s.scope_id = ANY(:scopes)), 0) AS df,
           coalesce((SELECT sum(c.chunk_count) FROM bm25_corpus_stats c
                     WHERE c.scope_id = ANY(:scopes)), 0) AS chunks
    FROM tokens t
    """
)


async def question_term_weights(
    session: AsyncSession, question: str, scope_ids: list[uuid.UUID]
) -> dict[str, float] | None:
    """{lower-case question word: IDF}; stop words are absent. None when the scope is empty."""
    rows = (await session.execute(_WEIGHTS, {"question": question, "scopes": scope_ids})).all()
    if not rows or int(rows[0].chunks) <= 0:
        return None
    weights: dict[str, float] = {}
    for row in rows:
        # Tokens the parser splits further ("layout-parser") are keyed by their parts too.
        for word in [str(row.token), *str(row.token).replace("-", " ").split()]:
            weights[word] = max(weights.get(word, 0.0), idf(int(row.chunks), int(row.df)))
    return weights
