"""Hybrid retrieval: pgvector HNSW cosine + BM25 over PostgreSQL lexemes, fused with RRF.

Every candidate query carries the authorization filter in its WHERE clause — chunks of
READY documents of a model the user may read (`policy.model_is_readable`), either shared
(session_id NULL) or attached to the caller's own chat session — so nothing a user may
not read is ever fetched, ranked or returned.

Dense: `ORDER BY embedding <=> query` on the HNSW index with `hnsw.iterative_scan`
(pgvector 0.8): the index keeps scanning until enough rows pass the model filter, so a
small model inside a big table still gets its k results.

Lexical: Okapi BM25, score = Σ idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl)) with
idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5)), over the `english` lexemes of
`search_vector`. N, avgdl and df come from the trigger-maintained statistics of the
model's corpus plus, in a chat, the session's attachments (migration 0002); tf is the
number of positions of the lexeme in the chunk's tsvector and dl its `term_count`. The
GIN index finds the chunks containing any query lexeme; `ts_filter(setweight(...))`
cuts each one's tsvector down to the query lexemes before unnesting, so scoring costs
O(query terms) per candidate.

Only chunks containing one of the query's rarest terms are scored, as long as that
provably leaves the top of the ranking unchanged (`_lexical_ranking`).

Phrase evidence (HYBRID): a passage that holds the query's wording, not just its words.
The query's consecutive lexemes form bigrams (`'a' <d> 'b'`, d their distance in the query,
so stop words in between count as in the text); the lexical and dense candidates are scored
by the IDF weight of the bigrams they contain, which ranks a third list. A phrase in quotes
(`"..."`) is looked up on the GIN index as a whole (`phraseto_tsquery`), whatever the other
lists say, and the chunks holding it form a fourth list with a weight that puts them first.

Fusion: weighted reciprocal rank fusion of the ranked lists (chunk level).

Latency (HYBRID): the dense list runs on a spare pooled connection while the caller's runs
the lexical ones (`_spare_connection`); every statement is built once per shape with its
values as bind parameters (variable-length inputs — bigrams, candidate ids — as arrays);
the HNSW settings are the connections' own defaults; the proximity statement also fetches
the candidates' passages. At 200k chunks HYBRID p50 went from 33.5 to 26.2 ms (session 6)
and to 14–18 ms (session 7, BM25 over 300 candidates; docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import math
import re
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import REGCONFIG, TSQUERY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.pool import QueuePool

from gql_server.access.policy import is_admin, model_readable_by
from gql_server.db.engine import CONNECTION_SETTINGS_KEY
from gql_server.db.models import (
    Bm25CorpusStats,
    Bm25TermStats,
    ChatSession,
    Document,
    DocumentChunk,
    RagModel,
    User,
)

if TYPE_CHECKING:
    from gql_server.embedding.embedder import EmbeddingOptions

# Longest query accepted (characters); the API refuses longer ones as invalid input.
MAX_QUERY_CHARACTERS = 2000
MAX_K = 50


class RetrievalMode(enum.Enum):
    HYBRID = "HYBRID"
    DENSE = "DENSE"
    LEXICAL = "LEXICAL"


@dataclass(frozen=True, slots=True)
class RetrievalParameters:
    """Ranking constants, tuned on SciFact's train queries only (bench/retrieval_bench.py)."""

    # Full SciFact train (809 queries, same ingest, `--tune-phrases --variant`): HYBRID
    # nDCG@10 0.7300 at the textbook 1.2 / 0.75, 0.7314 at 0.9 / 0.4 (Anserini's BEIR
    # setting); chunks are of similar length, so a weaker length normalisation costs little.
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    # With contextual chunk headers dense and BM25 are about as good on SciFact (0.680 /
    # 0.684), so equal weights; a small k trusts the top of each list (k 5-10 and dense
    # weight 0.8-1.2 are within 0.003 of each other, 60 is 0.014 lower).
    rrf_k: float = 5.0
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    # How deep each ranked list is read before fusion (at least k). nDCG@10 on SciFact
    # train is flat from 20 to 100 (0.7238-0.7258). A filtered HNSW search costs about in
    # proportion to the rows it visits, but with a shallower dense list the relaxed-order
    # iterative scan's top 10 drifts from the exact one (filtered recall@10 on 200k chunks:
    # 0.92 at 30, 0.94 at 50, 0.96 at 100), so dense stays 100 deep.
    dense_depth: int = 100
    lexical_depth: int = 50
    # HNSW candidate list size; with iterative scan it is a batch size, not a ceiling.
    ef_search: int = 200
    # BM25 scores the chunks of the query's rarest terms, at least about this many of
    # them, admitting more terms until its first max(k, `bm25_exact_depth`) results are
    # provably exact or the candidates reach `bm25_max_candidates` (then the ranking is
    # BM25 over those candidates: chunks with only the query's commonest words are left out).
    # Scoring costs ~7 µs per candidate (its tsvector filtered and unnested). At 200k chunks
    # 500 instead of 1000 took HYBRID p50 from 23.0 to 19.8 ms (146 of 150 top-10 rankings
    # identical), 300 instead of 500 from 13.7 to 11.4 ms in an interleaved run (187 of 200
    # identical); SciFact HYBRID nDCG@10 0.7314 (1000), 0.7311 (500), 0.7311 (300), 0.7328
    # (200); bench/answer_bench.py unchanged at 300 (docs/benchmarks.md).
    bm25_candidate_target: int = 300
    bm25_max_candidates: int = 300
    bm25_exact_depth: int = 10
    # Phrase evidence (HYBRID). The bigram list's weight in the fusion, and how deep into
    # the dense list its candidates go (every lexical candidate is checked).
    proximity_weight: float = 1.0
    proximity_dense_depth: int = 50
    # Only chunks holding at least this share of the query's bigram weight verbatim (near-
    # exact wording) are listed: a claim's incidental word pairs ("cell types") are no
    # evidence. Full SciFact train (809 queries, `bench/retrieval_bench.py --tune-phrases`):
    # HYBRID nDCG@10 0.7301 without the list, 0.7281 at share 0.5, 0.7294 at 0.5 with weight
    # 0.5, 0.7301 at 0.7 and 0.9 (weight 1.0); listing every chunk with any bigram cost more
    # (0.8515 → 0.8217 on a 152-query subset).
    proximity_min_share: float = 0.7
    # Chunks holding a quoted phrase of the query: a list whose first entry alone
    # (phrase_weight / (rrf_k + 1)) outweighs any chunk ranked first by the other lists.
    phrase_weight: float = 4.0
    phrase_limit: int = 50


DEFAULT_PARAMETERS = RetrievalParameters()


@dataclass(frozen=True, slots=True)
class RetrievedPassage:
    chunk_id: int
    document_id: uuid.UUID
    document_title: str
    text: str
    page_start: int | None
    page_end: int | None
    row_start: int | None
    row_end: int | None
    # HYBRID: fused RRF score; DENSE: cosine similarity; LEXICAL: BM25 score.
    score: float
    # 1-based rank in the dense / BM25 list, None when the passage was not in that list.
    dense_rank: int | None
    lexical_rank: int | None
    # Cosine similarity to the query, when a query embedding was used.
    similarity: float | None = None
    # The chunk's typed location (document_chunks.location: slide, sheet, heading path, OCR).
    location: dict[str, Any] | None = None


# --- query embedding ---------------------------------------------------------------------

_QUERY_EMBEDDING_CACHE_SIZE = 256
_query_embedding_cache: OrderedDict[tuple[EmbeddingOptions | None, str], npt.NDArray[np.float32]] = (
    OrderedDict()
)


async def embed_query(query: str, options: EmbeddingOptions | None = None) -> npt.NDArray[np.float32]:
    """The query's embedding, computed in a worker thread (never on the event loop),
    remembered in a small LRU cache because users repeat and retry questions. `options`:
    the server's (`EmbeddingOptions.from_settings`), so queries and chunks are embedded
    by the same backend; None, the defaults (scripts, tests)."""
    key = (options, query)
    cached = _query_embedding_cache.get(key)
    if cached is not None:
        _query_embedding_cache.move_to_end(key)
        return cached
    # Imported here: the first use loads the model (heavy), and only retrieval needs it.
    from gql_server.embedding.embedder import DEFAULT_OPTIONS, get_embedder

    def compute() -> npt.NDArray[np.float32]:
        return get_embedder(options=options or DEFAULT_OPTIONS).embed([query])[0]

    vector = await asyncio.to_thread(compute)
    vector.setflags(write=False)
    _query_embedding_cache[key] = vector
    while len(_query_embedding_cache) > _QUERY_EMBEDDING_CACHE_SIZE:
        _query_embedding_cache.popitem(last=False)
    return vector


# --- the visibility filter -----------------------------------------------------------------
#
# Every statement is built once per shape (functools.cache) with its values as bind
# parameters: building the statements of a HYBRID retrieval anew each time took about half
# of its Python time (py-spy, 200k chunks), and Python time is on the critical path of both
# concurrent lists. The shape of the visibility filter is whether the user is an admin
# (who reads every model) and whether a chat session's attachments are in scope; the
# `scope_*` parameters carry who and what.


@dataclass(frozen=True, slots=True)
class _Scope:
    """Who retrieves from which model (and chat session): the visibility filter's shape
    and the values bound into every statement that uses it."""

    admin: bool
    with_session: bool
    values: dict[str, Any]

    @property
    def visible(self) -> ColumnElement[bool]:
        return _visible_chunks(self.admin, self.with_session)

    def params(self, **more: Any) -> dict[str, Any]:
        return {**self.values, **more}


def _scope_user() -> Any:
    return bindparam("scope_user", type_=User.__table__.c.id.type)


def _scope_model() -> Any:
    return bindparam("scope_model", type_=DocumentChunk.__table__.c.model_id.type)


def _owned_session_id(with_session: bool) -> ColumnElement:
    """The scope's chat session id when it belongs to the scope's user and model, else NULL."""
    if not with_session:
        return literal(None, type_=DocumentChunk.session_id.type)
    return (
        select(ChatSession.id)
        .where(
            ChatSession.id == bindparam("scope_chat_session", type_=ChatSession.__table__.c.id.type),
            ChatSession.user_id == _scope_user(),
            ChatSession.model_id == _scope_model(),
        )
        .scalar_subquery()
    )


@functools.cache
def _visible_chunks(admin: bool, with_session: bool) -> ColumnElement[bool]:
    """WHERE clause over DocumentChunk: what the scope's user may retrieve. The readability
    check is a one-time filter (no row of an unreadable model matches), next to a plain
    `model_id = $n` that prunes the chunk table to the model's partition (migration 0004)."""
    model = _scope_model()
    readable = exists(
        select(RagModel.id).where(
            RagModel.id == model, model_readable_by(RagModel.id, user_id=_scope_user(), admin=admin)
        )
    )
    session_clause: ColumnElement[bool] = DocumentChunk.session_id.is_(None)
    if with_session:
        session_clause = or_(session_clause, DocumentChunk.session_id == _owned_session_id(True))
    return and_(DocumentChunk.model_id == model, readable, ~_document_not_ready(), session_clause)


@functools.cache
def _access_statement(admin: bool, with_session: bool, set_hnsw: bool) -> Select[Any]:
    """The model's id when the scope's user may read it, the chat session's id when it is
    theirs and the model's; with `set_hnsw`, it also sets the transaction's HNSW settings."""
    columns: list[Any] = [RagModel.id, _owned_session_id(with_session)]
    if set_hnsw:
        columns += [
            func.set_config("hnsw.iterative_scan", bindparam("hnsw_iterative_scan", type_=Text), True),
            func.set_config("hnsw.ef_search", bindparam("hnsw_ef_search", type_=Text), True),
        ]
    return select(*columns).where(
        RagModel.id == _scope_model(), model_readable_by(RagModel.id, user_id=_scope_user(), admin=admin)
    )


def _document_not_ready() -> ColumnElement[bool]:
    """Whether the chunk's document is not READY (being re-indexed: its old chunks stay
    until the new ones are swapped in). An anti-join on the partial index of documents
    that are not READY (migration 0005), which is empty or nearly so: much cheaper than
    joining every candidate chunk to its document (the status is a literal, not a bind
    parameter, so the planner can prove the partial index applies). Built once: it holds no
    value, and building an aliased entity took ~1.5 ms of CPU per retrieval."""
    return _DOCUMENT_NOT_READY


_UNREADY_DOCUMENT = aliased(Document, name="unready_document")
_DOCUMENT_NOT_READY = exists(
    select(literal_column("1"))
    .where(
        _UNREADY_DOCUMENT.id == DocumentChunk.document_id,
        _UNREADY_DOCUMENT.status != literal_column("'READY'"),
    )
    .correlate_except(_UNREADY_DOCUMENT)
)


# --- the two rankings ----------------------------------------------------------------------


_LOCAL_HNSW_SETTINGS = "ragql_local_hnsw_settings"  # session.info: this session set its own


def _wanted_hnsw_settings(limit: int, parameters: RetrievalParameters) -> dict[str, str]:
    """The HNSW scan settings a dense list needs: relaxed_order lets results come slightly
    out of order (`_dense_ranking` re-sorts them), and the candidate list is at least as
    long as the list asked for."""
    return {
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.ef_search": str(max(parameters.ef_search, limit)),
    }


def _carries(connection: AsyncConnection, wanted: dict[str, str]) -> bool:
    """Whether the connection's own defaults are `wanted` (`create_engine` opens every
    connection with SEARCH_CONNECTION_SETTINGS), so no statement needs to set them."""
    carried = connection.info.get(CONNECTION_SETTINGS_KEY) or {}
    return all(carried.get(name) == value for name, value in wanted.items())


def _set_locally(wanted: dict[str, str]) -> list[ColumnElement[Any]]:
    """Select-list items that set `wanted` for the rest of the transaction."""
    return [func.set_config(name, value, True) for name, value in wanted.items()]


async def _hnsw_settings(
    session: AsyncSession, limit: int, parameters: RetrievalParameters
) -> dict[str, str] | None:
    """The HNSW settings the caller's transaction must set (bound into the access check);
    None when its connection carries them already and this session never set other ones
    (those would still be in force until its transaction ends)."""
    wanted = _wanted_hnsw_settings(limit, parameters)
    if not session.info.get(_LOCAL_HNSW_SETTINGS) and _carries(await session.connection(), wanted):
        return None
    session.info[_LOCAL_HNSW_SETTINGS] = True
    return wanted


@functools.cache
def _dense_statement(admin: bool, with_session: bool) -> Select[Any]:
    distance = DocumentChunk.embedding.cosine_distance(
        bindparam("query_vector", type_=DocumentChunk.__table__.c.embedding.type)
    ).label("distance")
    return (
        select(DocumentChunk.id, distance)
        .select_from(DocumentChunk)
        .where(_visible_chunks(admin, with_session))
        .order_by(distance)
        .limit(bindparam("dense_limit", type_=Integer))
    )


async def _dense_ranking(
    connection: AsyncConnection,
    scope: _Scope,
    query_embedding: npt.NDArray[np.float32],
    limit: int,
) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity), best first. The HNSW settings must be in force
    (`_hnsw_settings`) before it runs."""
    statement = _dense_statement(scope.admin, scope.with_session)
    rows = (
        await connection.execute(
            statement, scope.params(query_vector=query_embedding.tolist(), dense_limit=limit)
        )
    ).all()
    return sorted(((row[0], 1.0 - float(row[1])) for row in rows), key=lambda item: -item[1])


@dataclass(frozen=True, slots=True)
class _QueryTerms:
    # Rarest (highest IDF) first.
    lexemes: list[str]
    idfs: list[float]
    # Chunks of the scope containing each lexeme.
    frequencies: list[int]
    average_length: float
    chunk_count: int
    # Consecutive query lexemes that occur in the scope: (tsquery 'a' <d> 'b', idf_a + idf_b).
    bigrams: list[tuple[str, float]]

    def use_text_index(self, lexeme_count: int) -> bool:
        """Whether the GIN index is the cheaper way to find the chunks containing any of
        the first `lexeme_count` lexemes.

        The GIN index is the model partition's own (migration 0004): reading the posting
        lists costs ≈ Σdf entries, while reading the partition and rechecking `@@` costs
        ≈ its chunk count, each about 4x a posting entry (measured on 200k chunks). The
        partition also holds other chat sessions' attachments, few next to the model's
        own chunks, so the scope's chunk count stands in for its size.
        """
        return sum(self.frequencies[:lexeme_count]) < 4 * self.chunk_count


def _quoted_lexeme(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsquery_literal(lexemes: Sequence[str]) -> str:
    """`'a' | 'b'` — lexemes are already normalised, so they are quoted, not parsed again."""
    return " | ".join(_quoted_lexeme(lexeme) for lexeme in lexemes)


# Text in straight or typographic double quotes (or guillemets), at least two words long.
_QUOTED_PHRASE = re.compile(r'["“”„«»]([^"“”„«»]+?)["“”„«»]')


def quoted_phrases(query: str) -> list[str]:
    """The phrases the query puts in double quotes (two words or more)."""
    return [match.strip() for match in _QUOTED_PHRASE.findall(query) if len(match.split()) >= 2]


def _bigrams(positions: dict[str, list[int]], idf_of: dict[str, float]) -> list[tuple[str, float]]:
    """Each pair of consecutive query lexemes that both occur in the scope, as a phrase query."""
    sequence = sorted((position, lexeme) for lexeme, found in positions.items() for position in found)
    pairs: dict[str, float] = {}
    for (first_position, first), (second_position, second) in zip(sequence, sequence[1:], strict=False):
        if first in idf_of and second in idf_of:
            query = f"{_quoted_lexeme(first)} <{second_position - first_position}> {_quoted_lexeme(second)}"
            pairs[query] = idf_of[first] + idf_of[second]
    return list(pairs.items())


@functools.cache
def _query_terms_statement() -> Select[Any]:
    """The query's lexemes (with their positions) and, per lexeme, the chunks of the scopes
    `scope_ids` containing it; the corpus sums ride along as scalar subqueries on every row."""
    in_scopes = func.any(bindparam("scope_ids", type_=ARRAY(Bm25TermStats.__table__.c.scope_id.type)))
    corpus_chunks = (
        select(func.sum(Bm25CorpusStats.chunk_count))
        .where(Bm25CorpusStats.scope_id == in_scopes)
        .scalar_subquery()
    )
    corpus_terms = (
        select(func.sum(Bm25CorpusStats.total_terms))
        .where(Bm25CorpusStats.scope_id == in_scopes)
        .scalar_subquery()
    )
    query_lexemes = (
        func.unnest(
            func.to_tsvector(cast(literal("english"), REGCONFIG), bindparam("query_text", type_=Text))
        )
        .table_valued("lexeme", "positions", "weights")
        .alias("query_lexemes")
    )
    return (
        select(
            query_lexemes.c.lexeme,
            query_lexemes.c.positions,
            func.coalesce(func.sum(Bm25TermStats.doc_freq), 0),
            corpus_chunks,
            corpus_terms,
        )
        .select_from(query_lexemes)
        .outerjoin(
            Bm25TermStats,
            and_(Bm25TermStats.lexeme == query_lexemes.c.lexeme, Bm25TermStats.scope_id == in_scopes),
        )
        .group_by(query_lexemes.c.lexeme, query_lexemes.c.positions)
    )


async def _query_terms(
    connection: AsyncConnection, query: str, scope_ids: list[uuid.UUID]
) -> _QueryTerms | None:
    """The query's lexemes with their statistics in the scope, and the scope's corpus size:
    one statement."""
    rows = (
        await connection.execute(_query_terms_statement(), {"query_text": query, "scope_ids": scope_ids})
    ).all()
    if not rows:
        return None  # nothing but stop words
    chunk_count, total_terms = int(rows[0][3] or 0), int(rows[0][4] or 0)
    if chunk_count <= 0:
        return None
    # Rarest first, ties by lexeme so the plan is deterministic.
    present = sorted(
        ((str(lexeme), int(frequency)) for lexeme, _, frequency, _, _ in rows if int(frequency) > 0),
        key=lambda pair: (pair[1], pair[0]),
    )
    if not present:
        return None  # no query term occurs in this corpus
    idfs = [math.log(1.0 + (chunk_count - df + 0.5) / (df + 0.5)) for _, df in present]
    positions = {str(lexeme): [int(p) for p in (found or [])] for lexeme, found, *_ in rows}
    return _QueryTerms(
        lexemes=[lexeme for lexeme, _ in present],
        idfs=idfs,
        frequencies=[df for _, df in present],
        average_length=max(total_terms / chunk_count, 1e-9),
        chunk_count=chunk_count,
        bigrams=_bigrams(positions, {lexeme: idf for (lexeme, _), idf in zip(present, idfs, strict=True)}),
    )


async def _lexical_ranking(
    connection: AsyncConnection,
    scope: _Scope,
    terms: _QueryTerms | None,
    limit: int,
    parameters: RetrievalParameters,
    exact_depth: int,
) -> list[tuple[int, float]]:
    """(chunk id, BM25 score), best first.

    Candidates are the chunks containing one of the query's rarest terms, not any of its
    terms: a chunk containing none of the chosen terms scores below the sum of the other
    terms' upper bounds idf·(k1+1), so once the list's `exact_depth`-th score reaches
    that bound the ranking down to there is exact; otherwise more terms are admitted and
    the statement runs again, until `bm25_max_candidates` is reached (every term, as
    plain BM25, when that is set high). A query made of common words thus no longer
    scores half of the model's chunks.
    """
    if terms is None:
        return []
    exact_depth = min(max(exact_depth, 1), limit)
    bounds = [idf * (parameters.bm25_k1 + 1.0) for idf in terms.idfs]
    # The fewest rarest terms whose chunks are enough candidates to fill the list.
    used = 1
    while used < len(terms.lexemes) and sum(terms.frequencies[:used]) < parameters.bm25_candidate_target:
        used += 1
    while True:
        ranking = await _lexical_statement(connection, scope, terms, used, limit, parameters)
        if used >= len(terms.lexemes):
            return ranking
        if len(ranking) >= exact_depth and ranking[exact_depth - 1][1] >= sum(bounds[used:]):
            return ranking
        candidates = sum(terms.frequencies[:used])
        if candidates >= parameters.bm25_max_candidates:
            return ranking  # the commonest terms only reorder chunks that also have rarer ones
        # Not provably exact yet: admit the next term(s), doubling the candidate count.
        used += 1
        while used < len(terms.lexemes) and sum(terms.frequencies[:used]) < 2 * candidates:
            used += 1


@functools.cache
def _bm25_statement(admin: bool, with_session: bool, use_text_index: bool) -> Select[int, Any]:
    """BM25 over the query's terms (`bm25_lexemes`, `bm25_idfs`) for the chunks matching
    `bm25_tsquery`, found on the GIN index or by reading the partition."""
    k1 = bindparam("bm25_k1", type_=Float)
    b = bindparam("bm25_b", type_=Float)
    average_length = bindparam("bm25_average_length", type_=Float)
    matched = (
        func.unnest(
            func.ts_filter(
                func.setweight(
                    DocumentChunk.search_vector,
                    literal_column("'A'::\"char\""),
                    bindparam("bm25_lexemes", type_=ARRAY(Text)),
                ),
                literal_column("'{a}'::\"char\"[]"),
            )
        )
        .table_valued("lexeme", "positions", "weights")
        .lateral("matched")
    )
    weights = (
        func.unnest(
            bindparam("bm25_weight_lexemes", type_=ARRAY(Text)),
            bindparam("bm25_idfs", type_=ARRAY(Float)),
        )
        .table_valued("lexeme", "idf")
        .render_derived("term_weights")
    )
    matches = DocumentChunk.search_vector.op("@@")(cast(bindparam("bm25_tsquery", type_=Text), TSQUERY))
    term_frequency = func.cardinality(matched.c.positions)
    length_norm = k1 * (1.0 - b + b * DocumentChunk.term_count / average_length)
    score = func.sum(weights.c.idf * term_frequency * (k1 + 1.0) / (term_frequency + length_norm)).label(
        "score"
    )
    return (
        select(DocumentChunk.id, score)
        .select_from(DocumentChunk)
        .join(matched, true())
        .join(weights, weights.c.lexeme == matched.c.lexeme)
        .where(_visible_chunks(admin, with_session), matches if use_text_index else matches.is_(true()))
        .group_by(DocumentChunk.id)
        .order_by(score.desc(), DocumentChunk.id)
        .limit(bindparam("bm25_limit", type_=Integer))
    )


async def _lexical_statement(
    connection: AsyncConnection,
    scope: _Scope,
    terms: _QueryTerms,
    used: int,
    limit: int,
    parameters: RetrievalParameters,
) -> list[tuple[int, float]]:
    """BM25 over every query term, for the chunks containing one of the first `used` terms."""
    statement = _bm25_statement(scope.admin, scope.with_session, terms.use_text_index(used))
    values = scope.params(
        bm25_k1=parameters.bm25_k1,
        bm25_b=parameters.bm25_b,
        bm25_average_length=terms.average_length,
        bm25_lexemes=terms.lexemes,
        bm25_weight_lexemes=terms.lexemes,
        bm25_idfs=terms.idfs,
        bm25_tsquery=_tsquery_literal(terms.lexemes[:used]),
        bm25_limit=limit,
    )
    return [(row[0], float(row[1])) for row in (await connection.execute(statement, values)).all()]


# --- phrase evidence ------------------------------------------------------------------------


@functools.cache
def _candidates_statement(admin: bool, with_session: bool) -> Select[Any]:
    """The candidate chunks `candidate_ids` the scope may see, as passages, each with the
    Σ weight of the query bigrams (`proximity_phrases`, `proximity_weights`) it holds (NULL
    for none): the proximity evidence and the fetch of the passages in one statement."""
    bigrams = (
        func.unnest(
            cast(bindparam("proximity_phrases", type_=ARRAY(Text)), ARRAY(TSQUERY)),
            bindparam("proximity_weights", type_=ARRAY(Float)),
        )
        .table_valued("phrase", "weight")
        .render_derived("bigrams")
    )
    proximity = (
        select(func.sum(bigrams.c.weight))
        .select_from(bigrams)
        .where(DocumentChunk.search_vector.op("@@")(bigrams.c.phrase))
        .correlate(DocumentChunk)
        .scalar_subquery()
        .label("proximity")
    )
    return _passages_statement(admin, with_session, "candidate_ids").add_columns(proximity)


async def _candidate_passages(
    connection: AsyncConnection,
    scope: _Scope,
    terms: _QueryTerms | None,
    candidate_ids: Sequence[int],
    min_share: float | None,
) -> tuple[dict[int, Any], list[tuple[int, float]]]:
    """The candidates' passage rows by id, and the proximity ranking: (chunk id, Σ idf weight
    of the query bigrams it holds), best first, of the candidates holding at least
    `min_share` of the query's bigram weight (none when `min_share` is None).

    Each bigram is a phrase query on the chunk's own tsvector (positions are kept), so this
    costs O(candidates × bigrams) tsvector probes: under a millisecond for 100 candidates.
    The bigrams and their weights are bound as two arrays, so the statement has one shape
    whatever the query. It also fetches the candidates' passages, which the final top k is
    drawn from: one round trip instead of a proximity statement and then a fetch (its
    statement overhead was ~2 ms of a HYBRID retrieval's ~17 at 200k chunks).
    """
    bigrams = terms.bigrams if terms is not None and min_share is not None else []
    values = scope.params(
        proximity_phrases=[phrase for phrase, _ in bigrams],
        proximity_weights=[weight for _, weight in bigrams],
        candidate_ids=list(candidate_ids),
    )
    rows = (await connection.execute(_candidates_statement(scope.admin, scope.with_session), values)).all()
    needed = max((min_share or 0.0) * sum(weight for _, weight in bigrams), 1e-9)
    ranked = [(int(row.id), float(row.proximity)) for row in rows if row.proximity is not None]
    proximity = sorted(
        ((chunk_id, score) for chunk_id, score in ranked if score >= needed),
        key=lambda pair: (-pair[1], pair[0]),
    )
    return {row.id: row for row in rows}, proximity


async def _phrase_matches(
    connection: AsyncConnection,
    scope: _Scope,
    phrases: Sequence[str],
    limit: int,
) -> list[int]:
    """Chunks holding every quoted phrase of the query (else any one), on the GIN index."""
    if not phrases:
        return []
    english = cast(literal("english"), REGCONFIG)
    tsqueries = [func.phraseto_tsquery(english, phrase) for phrase in phrases]

    async def matching(queries: Sequence[ColumnElement[Any]]) -> list[int]:
        condition = and_(*(DocumentChunk.search_vector.op("@@")(query) for query in queries))
        statement = (
            select(DocumentChunk.id).select_from(DocumentChunk).where(scope.visible, condition).limit(limit)
        )
        return [int(row[0]) for row in (await connection.execute(statement, scope.values)).all()]

    found = await matching(tsqueries)
    if not found and len(tsqueries) > 1:
        for query in tsqueries:
            found.extend(chunk_id for chunk_id in await matching([query]) if chunk_id not in found)
    return found


# --- fusion and the public entry point ------------------------------------------------------


def reciprocal_rank_fusion(
    rankings: Sequence[tuple[Sequence[int], float]], rrf_k: float
) -> list[tuple[int, float]]:
    """Σ weight / (rrf_k + rank) over the lists an id appears in; best first, ties by id."""
    fused: dict[int, float] = {}
    for ranked_ids, weight in rankings:
        for rank, item in enumerate(ranked_ids, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (rrf_k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


async def retrieve_passages(
    session: AsyncSession,
    user: User,
    model_id: uuid.UUID,
    query: str,
    *,
    k: int,
    query_embedding: npt.NDArray[np.float32] | None = None,
    chat_session_id: uuid.UUID | None = None,
    mode: RetrievalMode = RetrievalMode.HYBRID,
    relevance_threshold: float | None = None,
    parameters: RetrievalParameters = DEFAULT_PARAMETERS,
    embedding: EmbeddingOptions | None = None,
) -> list[RetrievedPassage]:
    """The k passages best matching `query` that `user` may read in the model (and in
    their chat session `chat_session_id`, if given and theirs), best first.

    An unreadable or missing model, a foreign session or an empty query give no passages
    (the caller decides whether that is a NotFound). `relevance_threshold` is a minimum
    cosine similarity between query and passage, applied when a query embedding is used
    (DENSE and HYBRID). Runs a few statements inside the caller's transaction and sets
    transaction-local HNSW settings on it. `embedding`: how to embed the query when
    `query_embedding` is not given (see `embed_query`).
    """
    query = query.strip()
    k = max(1, min(int(k), MAX_K))
    if not query or not user.is_active:
        return []
    use_dense = mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID)
    use_lexical = mode in (RetrievalMode.LEXICAL, RetrievalMode.HYBRID)
    if use_dense and query_embedding is None:
        query_embedding = await embed_query(query, embedding)
    dense_depth = max(parameters.dense_depth, k)
    # The access check also sets this transaction's HNSW settings for a dense list.
    settings = await _hnsw_settings(session, dense_depth, parameters) if use_dense else None
    # Core execution on the session's connection: these statements load no ORM entities,
    # and skipping the ORM's execution layer saves its per-statement work.
    db = await session.connection()
    admin = is_admin(user)
    requested = _Scope(
        admin,
        chat_session_id is not None,
        {"scope_user": user.id, "scope_model": model_id, "scope_chat_session": chat_session_id},
    )
    access_values = requested.params()
    if settings is not None:
        access_values.update(
            hnsw_iterative_scan=settings["hnsw.iterative_scan"], hnsw_ef_search=settings["hnsw.ef_search"]
        )
    access = (
        await db.execute(
            _access_statement(admin, requested.with_session, settings is not None), access_values
        )
    ).one_or_none()
    if access is None:
        return []
    scope_ids: list[uuid.UUID] = [model_id] + ([access[1]] if access[1] is not None else [])
    # Attachments are in scope only when the chat session is the user's, in this model.
    scope = _Scope(admin, access[1] is not None, requested.values)

    async def dense_list(on: AsyncConnection) -> list[tuple[int, float]]:
        if not use_dense:
            return []
        assert query_embedding is not None
        if on is not db and not _carries(on, wanted := _wanted_hnsw_settings(dense_depth, parameters)):
            await on.execute(select(*_set_locally(wanted)))
        return await _dense_ranking(on, scope, query_embedding, dense_depth)

    async def lexical_lists() -> tuple[_QueryTerms | None, list[tuple[int, float]]]:
        if not use_lexical:
            return None, []
        found = await _query_terms(db, query, scope_ids)
        ranking = await _lexical_ranking(
            db,
            scope,
            found,
            max(parameters.lexical_depth, k),
            parameters,
            exact_depth=max(k, parameters.bm25_exact_depth),
        )
        return found, ranking

    # A spare pooled connection runs the dense list while this one runs the lexical lists.
    spare = (
        await _spare_connection(session, _wanted_hnsw_settings(dense_depth, parameters))
        if use_dense and use_lexical
        else None
    )
    if spare is not None:
        try:
            # Both finish before the spare connection closes, also when one of them fails.
            dense_outcome, lexical_outcome = await asyncio.gather(
                dense_list(spare), lexical_lists(), return_exceptions=True
            )
        finally:
            await spare.close()  # read only: closing rolls back a transaction it began
        if isinstance(dense_outcome, BaseException):
            raise dense_outcome
        if isinstance(lexical_outcome, BaseException):
            raise lexical_outcome
        dense, (terms, lexical) = dense_outcome, lexical_outcome
    else:
        dense = await dense_list(db)
        terms, lexical = await lexical_lists()

    if mode is RetrievalMode.HYBRID:
        phrase_ids = await _phrase_matches(db, scope, quoted_phrases(query), parameters.phrase_limit)
        candidates = list(
            dict.fromkeys(
                [chunk_id for chunk_id, _ in lexical]
                + [chunk_id for chunk_id, _ in dense[: parameters.proximity_dense_depth]]
                + phrase_ids
            )
        )
        fetched, proximity = (
            await _candidate_passages(
                db,
                scope,
                terms,
                candidates,
                parameters.proximity_min_share if parameters.proximity_weight > 0 else None,
            )
            if candidates
            else ({}, [])
        )
        # The chunks holding a quoted phrase, in the order the proximity evidence gives them.
        proximity_order = {chunk_id: rank for rank, (chunk_id, _) in enumerate(proximity)}
        phrase_ids.sort(key=lambda chunk_id: (proximity_order.get(chunk_id, len(proximity_order)), chunk_id))
        ranked = reciprocal_rank_fusion(
            [
                ([chunk_id for chunk_id, _ in dense], parameters.dense_weight),
                ([chunk_id for chunk_id, _ in lexical], parameters.lexical_weight),
                ([chunk_id for chunk_id, _ in proximity], parameters.proximity_weight),
                (phrase_ids, parameters.phrase_weight),
            ],
            parameters.rrf_k,
        )
    elif mode is RetrievalMode.DENSE:
        fetched, ranked = {}, dense
    else:
        fetched, ranked = {}, lexical

    similarities = dict(dense)
    if relevance_threshold is not None and query_embedding is not None:
        missing = [chunk_id for chunk_id, _ in ranked if chunk_id not in similarities]
        if missing:
            similarities.update(await _similarities(db, scope, query_embedding, missing))
        ranked = [pair for pair in ranked if similarities.get(pair[0], -1.0) >= relevance_threshold]
    ranked = ranked[:k]
    if not ranked:
        return []

    dense_ranks = {chunk_id: rank for rank, (chunk_id, _) in enumerate(dense, start=1)}
    lexical_ranks = {chunk_id: rank for rank, (chunk_id, _) in enumerate(lexical, start=1)}
    # HYBRID fetched its candidates' passages already; the top k can hold others only when
    # the relevance threshold removed candidates (a dense list's tail).
    rows = dict(fetched)
    if wanted := [chunk_id for chunk_id, _ in ranked if chunk_id not in rows]:
        passage_rows = await db.execute(
            _passages_statement(scope.admin, scope.with_session, "passage_ids"),
            scope.params(passage_ids=wanted),
        )
        rows.update((row.id, row) for row in passage_rows.all())
    passages: list[RetrievedPassage] = []
    for chunk_id, score in ranked:
        row = rows.get(chunk_id)
        if row is None:  # deleted between the statements
            continue
        passages.append(
            RetrievedPassage(
                chunk_id=chunk_id,
                document_id=row.document_id,
                document_title=row.title,
                text=row.text,
                page_start=row.page_start,
                page_end=row.page_end,
                row_start=row.row_start,
                row_end=row.row_end,
                score=score,
                dense_rank=dense_ranks.get(chunk_id),
                lexical_rank=lexical_ranks.get(chunk_id),
                similarity=similarities.get(chunk_id),
                location=row.location,
            )
        )
    return passages


async def _spare_connection(session: AsyncSession, wanted: dict[str, str]) -> AsyncConnection | None:
    """A second pooled connection of the engine the caller's session is bound to, for the
    dense list, got without waiting (an idle one, or a new one below the pool's size); None
    when there is none (the lists then run one after the other). Called while the caller's
    session holds its own connection.

    HYBRID runs its dense and its lexical statements at the same time on two connections:
    PostgreSQL runs each on its own backend, so the hybrid latency is about the longer of
    the two instead of their sum (measured at 200k chunks: docs/benchmarks.md). A spare
    connection is never waited for: requests that each held one connection
    and waited for a second could starve the pool. The spare connection sees committed
    rows only, like any other request; the visibility filter is in its WHERE clause too.
    When it carries the `wanted` HNSW settings as its defaults, its one statement runs in
    autocommit: no BEGIN and no ROLLBACK round trips.
    """
    engine = session.bind
    if not isinstance(engine, AsyncEngine):
        return None
    pool = engine.sync_engine.pool
    # An idle connection, or room to open one without reaching the pool's size (opening
    # waits for the server, never for another request); overflow slots are left to requests.
    if not isinstance(pool, QueuePool) or (pool.checkedin() == 0 and pool.checkedout() >= pool.size()):
        return None
    # Checked out now, before any other task runs: taking an idle connection does not yield.
    connection = await engine.connect()
    if _carries(connection, wanted):
        await connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection


@functools.cache
def _passages_statement(admin: bool, with_session: bool, ids: str) -> Select[Any]:
    """The chunks whose ids are bound as `ids` that the scope may see, with their document's title."""
    return (
        select(
            DocumentChunk.id,
            DocumentChunk.document_id,
            Document.title,
            DocumentChunk.text,
            DocumentChunk.page_start,
            DocumentChunk.page_end,
            DocumentChunk.row_start,
            DocumentChunk.row_end,
            DocumentChunk.location,
        )
        .select_from(DocumentChunk)
        .join(Document, Document.id == DocumentChunk.document_id)
        .where(
            _visible_chunks(admin, with_session),
            DocumentChunk.id == func.any(bindparam(ids, type_=ARRAY(BigInteger))),
        )
    )


async def _similarities(
    connection: AsyncConnection,
    scope: _Scope,
    query_embedding: npt.NDArray[np.float32],
    chunk_ids: list[int],
) -> dict[int, float]:
    distance = DocumentChunk.embedding.cosine_distance(query_embedding.tolist())
    rows = await connection.execute(
        select(DocumentChunk.id, distance)
        .select_from(DocumentChunk)
        .where(scope.visible, DocumentChunk.id.in_(chunk_ids)),
        scope.values,
    )
    return {row[0]: 1.0 - float(row[1]) for row in rows.all()}
