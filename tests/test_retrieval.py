"""Retrieval: BM25 over Postgres lexemes, HNSW with iterative scan, RRF, and the SQL filters."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest
import pytest_asyncio
from pgvector.asyncpg import register_vector
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from gql_server.db.models import (
    Bm25CorpusStats,
    Bm25TermStats,
    ChatSession,
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
    RetrievedPassage,
    reciprocal_rank_fusion,
    retrieve_passages,
)
from gql_server.storage.chunk_partitions import partition_name
from tests.conftest import RunningServer
from tests.factories import client_for, create_model, create_user, grant_model

pytestmark = pytest.mark.asyncio(loop_scope="session")


def embed(texts: Sequence[str]) -> np.ndarray:
    from gql_server.embedding.embedder import get_embedder

    return get_embedder().embed(list(texts))


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def add_document(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: RagModel,
    texts: Sequence[str],
    *,
    title: str = "doc",
    status: DocumentStatus = DocumentStatus.READY,
    chat_session: ChatSession | None = None,
    embeddings: np.ndarray | None = None,
) -> tuple[Document, list[int]]:
    vectors = embeddings if embeddings is not None else embed(texts)
    async with sessionmaker.begin() as session:
        document = Document(
            model_id=model.id,
            session_id=chat_session.id if chat_session else None,
            filename=f"{title}.txt",
            title=title,
            kind=DocumentKind.TEXT,
            size_bytes=sum(len(item) for item in texts),
            sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            status=status,
            chunk_count=len(texts),
        )
        session.add(document)
        await session.flush()
        chunks = [
            DocumentChunk(
                document_id=document.id,
                model_id=model.id,
                session_id=document.session_id,
                chunk_index=index,
                text=item,
                token_count=len(item.split()) + 2,
                embedding=vectors[index],
                row_start=index + 1,
                row_end=index + 1,
            )
            for index, item in enumerate(texts)
        ]
        session.add_all(chunks)
        await session.flush()
        return document, [chunk.id for chunk in chunks]


async def search(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    model: RagModel,
    query: str,
    *,
    k: int = 10,
    mode: RetrievalMode = RetrievalMode.HYBRID,
    chat_session_id: uuid.UUID | None = None,
    parameters: RetrievalParameters | None = None,
    relevance_threshold: float | None = None,
) -> list[RetrievedPassage]:
    async with sessionmaker.begin() as session:
        return await retrieve_passages(
            session,
            user,
            model.id,
            query,
            k=k,
            mode=mode,
            chat_session_id=chat_session_id,
            relevance_threshold=relevance_threshold,
            **({"parameters": parameters} if parameters else {}),
        )


async def test_bm25_scores_match_a_hand_computed_example(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    other = await create_model(sessionmaker)
    _, (apple, banana, cherry) = await add_document(
        sessionmaker,
        model,
        ["apple banana apple", "banana cherry", "cherry date elderberry fig"],
    )
    # Another model's chunks must not change this model's statistics.
    await add_document(sessionmaker, other, ["apple apple apple", "apple cherry"])

    async with sessionmaker() as session:
        lengths = dict((await session.execute(select(DocumentChunk.id, DocumentChunk.term_count))).all())
        stats = await session.get(Bm25CorpusStats, model.id)
        frequencies = dict(
            (
                await session.execute(
                    select(Bm25TermStats.lexeme, Bm25TermStats.doc_freq).where(
                        Bm25TermStats.scope_id == model.id
                    )
                )
            ).all()
        )
    assert [lengths[apple], lengths[banana], lengths[cherry]] == [3, 2, 4]
    assert stats is not None and (stats.chunk_count, stats.total_terms) == (3, 9)
    assert frequencies == {"appl": 1, "banana": 2, "cherri": 2, "date": 1, "elderberri": 1, "fig": 1}

    # Query lexemes: appl (df 1), cherri (df 2); N = 3, avgdl = 9 / 3 = 3; k1 = 1.2, b = 0.75.
    k1, b = 1.2, 0.75
    idf_apple = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    idf_cherry = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))

    def term(idf: float, tf: int, length: int) -> float:
        return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / 3))

    expected = {
        apple: term(idf_apple, 2, 3),  # 0.9808 · 4.4 / 3.2 = 1.3486
        banana: term(idf_cherry, 1, 2),  # 0.4700 · 2.2 / 1.9 = 0.5442
        cherry: term(idf_cherry, 1, 4),  # 0.4700 · 2.2 / 2.5 = 0.4136
    }
    passages = await search(
        sessionmaker,
        admin,
        model,
        "Apples and cherries!",
        mode=RetrievalMode.LEXICAL,
        parameters=RetrievalParameters(bm25_k1=k1, bm25_b=b),
    )
    assert [passage.chunk_id for passage in passages] == [apple, banana, cherry]
    for passage in passages:
        assert passage.score == pytest.approx(expected[passage.chunk_id], abs=1e-6)
        assert passage.lexical_rank is not None and passage.dense_rank is None
    assert passages[0].score == pytest.approx(1.3486, abs=1e-4)

    # Statistics follow deletions (triggers): removing the document empties the scope.
    async with sessionmaker.begin() as session:
        await session.execute(text("DELETE FROM documents WHERE model_id = :id"), {"id": model.id})
    async with sessionmaker() as session:
        assert await session.get(Bm25CorpusStats, model.id) is None
        assert (
            await session.scalar(
                select(Bm25TermStats.lexeme).where(Bm25TermStats.scope_id == model.id).limit(1)
            )
        ) is None
        assert (await session.get(Bm25CorpusStats, other.id)) is not None
    assert await search(sessionmaker, admin, model, "apple cherry", mode=RetrievalMode.LEXICAL) == []


async def test_hybrid_finds_passages_only_one_ranking_finds(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    only_lexical = "The spare part zq7781 is listed in the warehouse catalogue."
    only_dense = "A kitten dozed on the sofa the whole afternoon."
    fillers = [
        "Quarterly revenue grew because of strong export demand.",
        "The bridge was closed for repairs after the storm.",
        "Photosynthesis converts light energy into chemical energy.",
        "The orchestra rehearsed the symphony twice before the concert.",
    ]
    _, ids = await add_document(sessionmaker, model, [only_lexical, only_dense, *fillers])
    lexical_id, dense_id = ids[0], ids[1]
    query = "young cat napping on a couch zq7781"

    lexical = await search(sessionmaker, admin, model, query, mode=RetrievalMode.LEXICAL)
    assert [passage.chunk_id for passage in lexical] == [lexical_id]  # no shared lexeme with the rest
    dense = await search(sessionmaker, admin, model, query, mode=RetrievalMode.DENSE)
    assert dense[0].chunk_id == dense_id
    assert dense[0].score == pytest.approx(dense[0].similarity)

    hybrid = await search(sessionmaker, admin, model, query, k=2)
    assert {passage.chunk_id for passage in hybrid} == {lexical_id, dense_id}
    by_id = {passage.chunk_id: passage for passage in hybrid}
    assert by_id[dense_id].lexical_rank is None and by_id[dense_id].dense_rank == 1
    assert by_id[lexical_id].lexical_rank == 1 and by_id[lexical_id].dense_rank not in (None, 1)
    assert hybrid[0].document_title == "doc" and hybrid[0].row_start is not None

    # A relevance threshold (cosine similarity) drops the passages far from the query.
    strict = await search(sessionmaker, admin, model, query, k=5, relevance_threshold=0.99)
    assert strict == []
    loose = await search(sessionmaker, admin, model, query, k=5, relevance_threshold=-1.0)
    assert len(loose) == 5


async def test_hybrid_runs_the_dense_list_on_a_spare_connection_only_when_one_is_free(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """HYBRID borrows a second pooled connection for the dense list when one is idle (or the
    pool may open one), and gives the same passages as on one connection; on a pool whose
    only connection the request holds it runs both lists on it instead of waiting (a wait
    would never end here: pool_timeout is short and nobody else returns a connection)."""
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    texts = [
        "The spare part zq7781 is listed in the warehouse catalogue.",
        "A kitten dozed on the sofa the whole afternoon.",
        "The bridge was closed for repairs after the storm.",
        "Photosynthesis converts light energy into chemical energy.",
    ]
    await add_document(sessionmaker, model, texts)
    query = "young cat napping on a couch near the zq7781 catalogue"
    results = {}
    for pool_size in (1, 3):
        engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=0, pool_timeout=2)
        connections: list[int] = []
        try:
            event.listen(engine.sync_engine, "checkout", lambda *_, seen=connections: seen.append(1))
            maker = async_sessionmaker(engine, expire_on_commit=False)
            results[pool_size] = [
                (passage.chunk_id, passage.dense_rank, passage.lexical_rank)
                for passage in await search(maker, admin, model, query, k=4)
            ]
            checked_out = len(connections)
        finally:
            await engine.dispose()
        assert checked_out == (1 if pool_size == 1 else 2)
    assert results[1] == results[3] and len(results[1]) == 4


async def test_engine_connections_carry_the_hnsw_settings_so_hybrid_sets_none(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The product's engine opens every connection with the HNSW scan settings retrieval
    needs: HYBRID then runs no set_config statement, its spare connection runs the dense
    list in autocommit, and the passages are those of an engine whose connections lack the
    settings (where retrieval sets them per transaction). A session that once set other
    values sets the defaults again rather than trusting the connection's defaults."""
    from gql_server.db.engine import create_engine

    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    await add_document(
        sessionmaker,
        model,
        [
            "The spare part zq7781 is listed in the warehouse catalogue.",
            "A kitten dozed on the sofa the whole afternoon.",
            "The bridge was closed for repairs after the storm.",
        ],
    )
    query = "young cat napping on a couch near the zq7781 catalogue"
    results = {}
    for name, engine in (
        ("product", create_engine(database_url, pool_size=3)),
        ("plain", create_async_engine(database_url, pool_size=3)),
    ):
        statements: list[tuple[str, str | None]] = []

        def seen(conn, _cursor, statement, *_args, log=statements) -> None:  # type: ignore[no-untyped-def]
            log.append((statement, conn.get_execution_options().get("isolation_level")))

        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        try:
            maker = async_sessionmaker(engine, expire_on_commit=False)
            if name == "product":
                async with maker() as session:
                    shown = (
                        await session.execute(
                            text(
                                "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')"
                            )
                        )
                    ).one()
                assert tuple(shown) == ("200", "relaxed_order")
                statements.clear()
            results[name] = [
                (passage.chunk_id, passage.dense_rank, passage.lexical_rank)
                for passage in await search(maker, admin, model, query, k=3)
            ]
            set_config = [statement for statement, _ in statements if "set_config" in statement]
            dense = [level for statement, level in statements if "<=>" in statement]
            if name == "product":
                assert set_config == [] and dense == ["AUTOCOMMIT"], statements
                # Other values set in a transaction are still in force in it: the session
                # that set them sets the defaults again.
                statements.clear()
                async with maker.begin() as session:
                    for parameters in (RetrievalParameters(ef_search=400), RetrievalParameters()):
                        await retrieve_passages(session, admin, model.id, query, k=3, parameters=parameters)
                access_checks = [
                    statement for statement, _ in statements if statement.startswith("SELECT models.id")
                ]
                assert len(access_checks) == 2 and all(
                    "set_config" in statement for statement in access_checks
                )
            else:
                assert set_config and dense == [None], statements
        finally:
            await engine.dispose()
    assert results["product"] == results["plain"] and len(results["product"]) == 3


async def test_hybrid_fetches_passages_ranked_beyond_its_candidates(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """HYBRID fetches its candidates' passages with the proximity evidence; a passage of the
    top k outside the candidates (here: dense candidates cut to one) is fetched on its own,
    with the same text and place as when it is a candidate."""
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    texts = [
        "The spare part zq7781 is listed in the warehouse catalogue.",
        "A kitten dozed on the sofa the whole afternoon.",
        "A young cat slept on the couch near the window.",
        "Photosynthesis converts light energy into chemical energy.",
    ]
    await add_document(sessionmaker, model, texts)
    query = "young cat napping on a couch near the zq7781 catalogue"

    def described(passages: Sequence[RetrievedPassage]) -> list[tuple[int, str, int | None, int | None]]:
        return [(p.chunk_id, p.text, p.page_start, p.dense_rank) for p in passages]

    usual = await search(sessionmaker, admin, model, query, k=4)
    narrow = await search(
        sessionmaker, admin, model, query, k=4, parameters=RetrievalParameters(proximity_dense_depth=1)
    )
    assert len(usual) == 4 and {p.text for p in usual} == set(texts)
    assert sorted(described(narrow)) == sorted(described(usual))


async def test_a_failing_lexical_list_leaves_the_spare_connection_returned(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When one of the two concurrent lists fails, the error reaches the caller and the
    dense list finishes before its spare session closes: no connection stays checked out."""
    import gql_server.rag.retrieval as retrieval

    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    await add_document(sessionmaker, model, ["The spare part zq7781 is listed in the catalogue."])

    async def failing(*_: object) -> None:
        raise RuntimeError("lexical list failed")

    monkeypatch.setattr(retrieval, "_query_terms", failing)
    engine = create_async_engine(database_url, pool_size=3, max_overflow=0, pool_timeout=2)
    try:
        maker = async_sessionmaker(engine, expire_on_commit=False)
        with pytest.raises(RuntimeError, match="lexical list failed"):
            await search(maker, admin, model, "zq7781 catalogue")
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_reciprocal_rank_fusion_weights_and_ties() -> None:
    fused = reciprocal_rank_fusion([([1, 2, 3], 1.0), ([3, 2], 2.0)], rrf_k=60)
    assert [item for item, _ in fused] == [3, 2, 1]
    assert fused[0][1] == pytest.approx(1 / 63 + 2 / 61)
    assert reciprocal_rank_fusion([([5], 1.0), ([4], 1.0)], rrf_k=60)[0][0] == 4  # ties by id


async def test_retrieval_only_returns_what_the_user_may_read(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    member = await create_user(sessionmaker)
    stranger = await create_user(sessionmaker)
    readable = await create_model(sessionmaker)
    foreign = await create_model(sessionmaker)
    await grant_model(sessionmaker, readable, user=member)
    await grant_model(sessionmaker, readable, user=stranger)
    async with sessionmaker.begin() as session:
        own_session = ChatSession(user_id=member.id, model_id=readable.id)
        other_session = ChatSession(user_id=stranger.id, model_id=readable.id)
        session.add_all([own_session, other_session])

    sentence = "Glaciers retreat quickly when the summer temperature rises."
    texts = [f"{sentence} Variant {index}." for index in range(8)]
    vectors = embed(texts)
    _, shared_ids = await add_document(sessionmaker, readable, texts[:2], embeddings=vectors[:2])
    _, foreign_ids = await add_document(sessionmaker, foreign, texts[2:3], embeddings=vectors[2:3])
    _, own_attachment = await add_document(
        sessionmaker, readable, texts[3:4], chat_session=own_session, embeddings=vectors[3:4]
    )
    _, other_attachment = await add_document(
        sessionmaker, readable, texts[4:5], chat_session=other_session, embeddings=vectors[4:5]
    )
    _, processing_ids = await add_document(
        sessionmaker, readable, texts[5:6], status=DocumentStatus.EMBEDDING, embeddings=vectors[5:6]
    )
    _, failed_ids = await add_document(
        sessionmaker, readable, texts[6:7], status=DocumentStatus.FAILED, embeddings=vectors[6:7]
    )
    deleted, deleted_ids = await add_document(sessionmaker, readable, texts[7:8], embeddings=vectors[7:8])
    async with sessionmaker.begin() as session:
        await session.delete(await session.get(Document, deleted.id))

    for mode in RetrievalMode:
        plain = await search(sessionmaker, member, readable, "glacier summer temperature", k=50, mode=mode)
        assert {passage.chunk_id for passage in plain} == set(shared_ids), mode
        in_chat = await search(
            sessionmaker,
            member,
            readable,
            "glacier summer temperature",
            k=50,
            mode=mode,
            chat_session_id=own_session.id,
        )
        assert {passage.chunk_id for passage in in_chat} == set(shared_ids + own_attachment), mode
        # Somebody else's session id adds nothing — its attachments stay invisible.
        hijack = await search(
            sessionmaker,
            member,
            readable,
            "glacier summer temperature",
            k=50,
            mode=mode,
            chat_session_id=other_session.id,
        )
        assert {passage.chunk_id for passage in hijack} == set(shared_ids), mode
        assert await search(sessionmaker, member, foreign, "glacier summer temperature", mode=mode) == []
        unknown = RagModel(id=uuid.uuid4(), name="missing")
        assert await search(sessionmaker, member, unknown, "glacier", mode=mode) == []
    never = set(foreign_ids + other_attachment + processing_ids + failed_ids + deleted_ids)
    everything = await search(sessionmaker, member, readable, "glacier", k=50, chat_session_id=own_session.id)
    assert not never & {passage.chunk_id for passage in everything}

    # Revoking access or deactivating the account empties the results at once.
    async with sessionmaker.begin() as session:
        await session.execute(text("DELETE FROM model_access_grants WHERE user_id = :id"), {"id": member.id})
    assert await search(sessionmaker, member, readable, "glacier") == []
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    assert {p.chunk_id for p in await search(sessionmaker, admin, readable, "glacier", k=50)} == set(
        shared_ids
    )
    admin.is_active = False
    assert await search(sessionmaker, admin, readable, "glacier") == []
    assert await search(sessionmaker, stranger, readable, "   ") == []


async def test_session_attachments_have_their_own_bm25_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    user = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    async with sessionmaker.begin() as session:
        chat = ChatSession(user_id=user.id, model_id=model.id)
        session.add(chat)
    await add_document(sessionmaker, model, ["walrus tusks", "ocean currents"])
    await add_document(sessionmaker, model, ["walrus colony census"], chat_session=chat)
    async with sessionmaker() as session:
        model_stats = await session.get(Bm25CorpusStats, model.id)
        chat_stats = await session.get(Bm25CorpusStats, chat.id)
        assert model_stats is not None and model_stats.chunk_count == 2
        assert chat_stats is not None and chat_stats.chunk_count == 1 and chat_stats.model_id == model.id
    found = await search(
        sessionmaker,
        user,
        model,
        "walrus",
        mode=RetrievalMode.LEXICAL,
        chat_session_id=chat.id,
        parameters=RetrievalParameters(bm25_k1=0.9, bm25_b=0.4),
    )
    # N = 3 and df(walrus) = 2 over the model's corpus plus this session's attachments.
    assert len(found) == 2
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    k1, b, average = 0.9, 0.4, 7 / 3
    shortest = idf * (k1 + 1) / (1 + k1 * (1 - b + b * 2 / average))
    assert found[0].score == pytest.approx(shortest, abs=1e-6)
    async with sessionmaker.begin() as session:  # deleting the session drops its statistics
        await session.delete(await session.get(ChatSession, chat.id))
    async with sessionmaker() as session:
        assert await session.get(Bm25CorpusStats, chat.id) is None


def _unit_vectors(rng: np.random.Generator, rows: int) -> np.ndarray:
    vectors = rng.normal(size=(rows, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def _dense_plan(session: AsyncSession, model_id: uuid.UUID, query: np.ndarray) -> str:
    # No sort node allowed: the planner must walk an HNSW index.
    await session.execute(text("SET LOCAL enable_sort = off"))
    return "\n".join(
        (
            await session.execute(
                text(
                    "EXPLAIN SELECT id FROM document_chunks WHERE model_id = :model"
                    f" ORDER BY embedding <=> '{query.tolist()}'::vector LIMIT 10"
                ),
                {"model": model_id},
            )
        ).scalars()
    )


async def test_each_model_has_its_own_chunk_partition_and_retrieval_reads_only_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    big = await create_model(sessionmaker)
    small = await create_model(sessionmaker)
    rng = np.random.default_rng(5)
    await add_document(
        sessionmaker, big, [f"big passage {index}" for index in range(40)], embeddings=_unit_vectors(rng, 40)
    )
    small_vectors = _unit_vectors(rng, 12)
    _, small_ids = await add_document(
        sessionmaker, small, [f"small passage {index}" for index in range(12)], embeddings=small_vectors
    )
    async with sessionmaker.begin() as session:
        partitions = set(
            (
                await session.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = 'document_chunks'::regclass"
                    )
                )
            ).scalars()
        )
        assert {partition_name(big.id), partition_name(small.id)} <= partitions
        counts = dict(
            (
                await session.execute(
                    text(
                        f"SELECT 'big', count(*) FROM {partition_name(big.id)}"
                        f" UNION ALL SELECT 'small', count(*) FROM {partition_name(small.id)}"
                    )
                )
            ).all()
        )
        assert counts == {"big": 40, "small": 12}
        plan = await _dense_plan(session, small.id, small_vectors[0])
        assert f"{partition_name(small.id)}_embedding_idx" in plan, plan
        assert partition_name(big.id) not in plan, plan  # pruned at plan time
        passages = await retrieve_passages(
            session,
            admin,
            small.id,
            "anything",
            k=10,
            query_embedding=small_vectors[0],
            mode=RetrievalMode.DENSE,
        )
    assert passages and passages[0].chunk_id == small_ids[0]
    assert all(passage.chunk_id in small_ids for passage in passages)


async def test_iterative_scan_fills_k_when_most_of_the_partition_is_filtered_out(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """20,000 chunks attached to another user's chat session and 30 shared ones, all in one
    model's partition: the session filter drops almost every row the HNSW walk meets."""
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    other = await create_user(sessionmaker)
    model = await create_model(sessionmaker)
    async with sessionmaker.begin() as session:
        chat = ChatSession(user_id=other.id, model_id=model.id)
        session.add(chat)
    rng = np.random.default_rng(3)
    attached_document, _ = await add_document(
        sessionmaker, model, ["seed"], embeddings=_unit_vectors(rng, 1), chat_session=chat
    )
    shared_vectors = _unit_vectors(rng, 30)
    _, shared_ids = await add_document(
        sessionmaker, model, [f"shared passage {index}" for index in range(30)], embeddings=shared_vectors
    )
    raw = await engine.raw_connection()
    try:
        connection = raw.driver_connection
        await register_vector(connection)
        # Bulk load without the index, then build it once (much faster than 20k inserts).
        await connection.execute("DROP INDEX ix_document_chunks_embedding_hnsw")
        await connection.copy_records_to_table(
            "document_chunks",
            records=[
                (attached_document.id, model.id, chat.id, index + 1, f"attached passage {index}", 4, vector)
                for index, vector in enumerate(_unit_vectors(rng, 20_000))
            ],
            columns=[
                "document_id",
                "model_id",
                "session_id",
                "chunk_index",
                "text",
                "token_count",
                "embedding",
            ],
        )
        await connection.execute(
            "CREATE INDEX ix_document_chunks_embedding_hnsw ON document_chunks"
            " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        await connection.execute("ANALYZE")
    finally:
        # Its vector codec (register_vector) would break SQLAlchemy's pgvector binding.
        raw.invalidate()

    query = shared_vectors[:5].mean(axis=0)
    query /= np.linalg.norm(query)
    exact = [shared_ids[index] for index in np.argsort(-(shared_vectors @ query))[:10]]
    async with sessionmaker.begin() as session:
        # Walking the HNSW index: without the iterative scan, ef_search=40 candidates from
        # 20k rows would hold ~0 shared ones.
        plan = await _dense_plan(session, model.id, query)
        assert f"{partition_name(model.id)}_embedding_idx" in plan, plan
        passages = await retrieve_passages(
            session, admin, model.id, "anything", k=10, query_embedding=query, mode=RetrievalMode.DENSE
        )
    assert len(passages) == 10
    assert len(set(exact) & {passage.chunk_id for passage in passages}) >= 9
    assert all(passage.chunk_id in shared_ids for passage in passages)


SEARCH = """
query Search($modelId: UUID!, $query: String!, $k: Int, $mode: SearchMode) {
  search(modelId: $modelId, query: $query, k: $k, mode: $mode) {
    __typename
    ... on SearchResults {
      passages { chunkId documentId documentTitle text pageStart pageEnd rowStart rowEnd score }
    }
    ... on NotFound { message }
    ... on InvalidInput { message fieldErrors { field message } }
  }
}
"""


async def test_search_query_end_to_end(server: RunningServer) -> None:
    state = server.state
    member = await create_user(state.sessionmaker)
    outsider = await create_user(state.sessionmaker)
    model = await create_model(state.sessionmaker)
    await grant_model(state.sessionmaker, model, user=member)
    document, ids = await add_document(
        state.sessionmaker,
        model,
        [f"Passage {index} about volcanic eruptions and lava flows." for index in range(60)],
        title="Volcanoes",
    )
    as_member = client_for(server.client, state.tokens, member)
    as_outsider = client_for(server.client, state.tokens, outsider)

    data = await as_member.execute(SEARCH, {"modelId": str(model.id), "query": "lava eruption", "k": 3})
    result = data["search"]
    assert result["__typename"] == "SearchResults"
    assert len(result["passages"]) == 3
    first = result["passages"][0]
    assert first["documentId"] == str(document.id) and first["documentTitle"] == "Volcanoes"
    assert int(first["chunkId"]) in ids and first["rowStart"] is not None and first["pageStart"] is None
    assert first["score"] > 0

    for mode in ("DENSE", "LEXICAL"):
        data = await as_member.execute(SEARCH, {"modelId": str(model.id), "query": "lava", "mode": mode})
        assert len(data["search"]["passages"]) == 10
    data = await as_member.execute(SEARCH, {"modelId": str(model.id), "query": "lava", "k": 500})
    assert len(data["search"]["passages"]) == 50  # clamped
    data = await as_member.execute(SEARCH, {"modelId": str(model.id), "query": "lava", "k": 0})
    assert len(data["search"]["passages"]) == 1

    hidden = await as_outsider.execute(SEARCH, {"modelId": str(model.id), "query": "lava"})
    missing = await as_outsider.execute(SEARCH, {"modelId": str(uuid.uuid4()), "query": "lava"})
    assert hidden == missing == {"search": {"__typename": "NotFound", "message": "Not found."}}

    for bad in ("   ", "x" * 2001):
        data = await as_member.execute(SEARCH, {"modelId": str(model.id), "query": bad})
        assert data["search"]["__typename"] == "InvalidInput"
        assert data["search"]["fieldErrors"][0]["field"] == "query"

    anonymous = await server.client.raw(SEARCH, {"modelId": str(model.id), "query": "lava"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bm25_rarest_terms_first_gives_the_exhaustive_ranking(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Scoring only chunks that contain the rarest query terms, admitting more terms until
    the top is provably exact, ranks exactly like scoring every chunk with any query term."""
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    rng = np.random.default_rng(3)
    common = ["protein", "cell", "cancer", "risk", "patient", "gene"]
    texts = [" ".join(rng.choice(common, size=int(rng.integers(3, 12)))) for _ in range(120)]
    texts += ["rare telomerase protein", "telomerase cell cell", "protein protein protein cell cancer risk"]
    vectors = rng.normal(size=(len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    await add_document(sessionmaker, model, texts, embeddings=vectors)
    query = "telomerase protein cell cancer risk"
    exhaustive = await search(
        sessionmaker,
        admin,
        model,
        query,
        k=50,
        mode=RetrievalMode.LEXICAL,
        parameters=RetrievalParameters(bm25_candidate_target=10**9, bm25_max_candidates=10**9),
    )
    for target, depth in ((1, 50), (1, 5), (30, 10)):
        pruned = await search(
            sessionmaker,
            admin,
            model,
            query,
            k=50,
            mode=RetrievalMode.LEXICAL,
            parameters=RetrievalParameters(
                bm25_candidate_target=target, bm25_max_candidates=10**9, bm25_exact_depth=depth
            ),
        )
        assert [(p.chunk_id, round(p.score, 9)) for p in pruned[:depth]] == [
            (p.chunk_id, round(p.score, 9)) for p in exhaustive[:depth]
        ]


async def test_chunk_context_is_indexed_but_not_part_of_the_snippet(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    admin = await create_user(sessionmaker, role=Role.ADMIN)
    model = await create_model(sessionmaker)
    _, (chunk_id,) = await add_document(sessionmaker, model, ["Jupiter has a strong magnetic field."])
    async with sessionmaker.begin() as session:
        chunk = await session.get(DocumentChunk, (chunk_id, model.id))
        assert chunk is not None
        chunk.context = "Astronomy primer"
    async with sessionmaker() as session:
        term_count = await session.scalar(
            select(DocumentChunk.term_count).where(DocumentChunk.id == chunk_id)
        )
        stats = await session.get(Bm25CorpusStats, model.id)
    assert term_count == 6  # astronomi primer + jupit strong magnet field: the header counts
    assert stats is not None and stats.total_terms == term_count
    passages = await search(sessionmaker, admin, model, "astronomy", mode=RetrievalMode.LEXICAL)
    assert [p.chunk_id for p in passages] == [chunk_id]
    assert passages[0].text == "Jupiter has a strong magnetic field."
