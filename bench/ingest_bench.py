"""Ingestion benchmark: ragql's pipeline through the product vs a stock LlamaIndex pipeline.

    .venv/bin/python bench/ingest_bench.py [--files R-intro.pdf pdfplumber__federal-register-2020-17221.pdf]
                                           [--big-text-pages 120] [--big-mb 250] [--skip-reference]

Part 1 runs the app in this process (real uvicorn, embedded PostgreSQL, in-process taskiq
worker), uploads each file through the GraphQL multipart API and waits for READY; then the
same files go through the reference pipeline: pypdf page texts as LlamaIndex Documents
(llama-index-readers-file is not installed; its PDFReader is the same one-Document-per-page
pypdf loop), `SemanticSplitterNodeParser` with its defaults, the same all-MiniLM-L6-v2
through a plain `BaseEmbedding` adapter, and one INSERT per node. Both report pages/s,
chunks/s, tokens embedded per second (each chunk's tokens, capped at the model's 256
window: what the model actually saw), and the share of process CPU time spent inside the
embedding model's forward pass.

Part 2 builds a ≥ 250 MB PDF (text pages from the shared PDFs interleaved with large
incompressible image pages), uploads it and ingests it, reporting upload time, peak RSS
of the server/worker process (one process in embedded mode) and of the PDF reader child,
and the event loop's longest block (a 10 ms ticker on the server loop) throughout.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil
import uvicorn

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
DEFAULT_FILES = ["R-intro.pdf", "pdfplumber__federal-register-2020-17221.pdf"]


class ForwardCpuMeter:
    """Process CPU seconds spent while the embedding model's forward pass runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.inside = 0.0
        self._start: float | None = None
        self._lock = threading.Lock()

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def attach(self, model: Any) -> None:
        model.register_forward_pre_hook(lambda *_: self._enter())
        model.register_forward_hook(lambda *_: self._exit())

    def _enter(self) -> None:
        with self._lock:
            self._start = self._cpu()

    def _exit(self) -> None:
        with self._lock:
            if self._start is not None:
                self.inside += self._cpu() - self._start
                self._start = None


class LoopLagMonitor:
    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.max_block = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.max_block = max(self.max_block, loop.time() - before - self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def reset(self) -> None:
        self.max_block = 0.0


class PeakRss:
    """Samples RSS of this process and, separately, of its children (the PDF reader)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.server = 0
        self.children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.server = max(self.server, self.process.memory_info().rss)
            total = 0
            for child in self.process.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.children = max(self.children, total)
            self._stop.wait(0.1)

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


UPLOAD = """mutation($modelId: UUID!, $file: Upload!) { uploadDocument(modelId: $modelId, file: $file) {
  __typename ... on DocumentUploaded { document { id } } ... on Error { message } } }"""
STATUS = "query($id: UUID!) { document(id: $id) { status pageCount chunkCount error warnings } }"


async def _upload(
    http: httpx.AsyncClient, base: str, token: str, model_id: str, path: Path
) -> tuple[str, float]:
    started = time.perf_counter()
    with path.open("rb") as handle:
        response = await http.post(
            base + "/graphql",
            data={
                "operations": json.dumps({"query": UPLOAD, "variables": {"modelId": model_id, "file": None}}),
                "map": json.dumps({"0": ["variables.file"]}),
            },
            files={"0": (path.name, handle, "application/octet-stream")},
            headers={"Authorization": f"Bearer {token}"},
        )
    elapsed = time.perf_counter() - started
    result = response.json()["data"]["uploadDocument"]
    assert result["__typename"] == "DocumentUploaded", result
    return result["document"]["id"], elapsed


async def _wait(http: httpx.AsyncClient, base: str, token: str, document_id: str) -> dict[str, Any]:
    while True:
        response = await http.post(
            base + "/graphql",
            json={"query": STATUS, "variables": {"id": document_id}},
            headers={"Authorization": f"Bearer {token}"},
        )
        document = response.json()["data"]["document"]
        if document["status"] in ("READY", "FAILED"):
            return dict(document)
        await asyncio.sleep(0.5)


async def _tokens_of(sessionmaker: Any, document_id: str) -> int:
    from sqlalchemy import text

    async with sessionmaker() as session:
        value = await session.scalar(
            text(
                "SELECT coalesce(sum(least(token_count, 256)), 0) FROM document_chunks WHERE document_id = :id"
            ),
            {"id": document_id},
        )
    return int(value or 0)


def build_big_pdf(target: Path, text_pages: int, megabytes: int) -> int:
    """Text pages from the shared PDFs interleaved with random-noise image pages."""
    from PIL import Image
    from pypdf import PdfReader, PdfWriter

    sources = [
        PdfReader(DOCS / name) for name in ("R-intro.pdf", "R-lang.pdf", "pdfplumber__ca-warn-report.pdf")
    ]
    source_pages = [page for reader in sources for page in reader.pages]
    # A 1100x800 noise JPEG at quality 100 is ~1.6 MB.
    image_pages = max(1, int(megabytes / 1.6) + 1)
    writer = PdfWriter()
    per_text = max(1, text_pages // image_pages) if text_pages else 0
    text_index = 0
    for index in range(image_pages):
        for _ in range(per_text):
            if text_index < text_pages:
                writer.add_page(source_pages[text_index % len(source_pages)])
                text_index += 1
        image = Image.frombytes("RGB", (1100, 800), os.urandom(1100 * 800 * 3))
        buffer = io.BytesIO()
        image.save(buffer, format="PDF", quality=100)
        writer.add_page(PdfReader(io.BytesIO(buffer.getvalue())).pages[0])
        if index % 10 == 0:
            print(f"  building: {index}/{image_pages} image pages", file=sys.stderr)
    while text_index < text_pages:
        writer.add_page(source_pages[text_index % len(source_pages)])
        text_index += 1
    with target.open("wb") as handle:
        writer.write(handle)
    return len(writer.pages)


def run_reference(
    paths: list[Path], meter: ForwardCpuMeter, rows: list[tuple[str, list[float]]]
) -> dict[str, Any]:
    from llama_index.core import Document
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.node_parser import SemanticSplitterNodeParser
    from pypdf import PdfReader
    from sentence_transformers import SentenceTransformer

    from workers.pipeline.embedder import default_model_path

    class PlainEmbedding(BaseEmbedding):
        _model: Any = PrivateAttr()

        def __init__(self) -> None:
            super().__init__(model_name="all-MiniLM-L6-v2")
            self._model = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._model.encode(query).tolist()  # type: ignore[no-any-return]

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._model.encode(text).tolist()  # type: ignore[no-any-return]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._model.encode(texts).tolist()  # type: ignore[no-any-return]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embedding(text)

    embedding = PlainEmbedding()
    meter.attach(embedding._model)
    tokenizer = embedding._model.tokenizer
    splitter = SemanticSplitterNodeParser(embed_model=embedding)
    cpu_start = sum(psutil.Process().cpu_times()[:2])
    forward_start = meter.inside
    started = time.perf_counter()
    pages = chunks = tokens = over_window = 0
    for path in paths:
        reader = PdfReader(path)
        documents = [
            Document(
                text=page.extract_text() or "", metadata={"page_label": str(i + 1), "file_name": path.name}
            )
            for i, page in enumerate(reader.pages)
        ]
        pages += len(documents)
        nodes = splitter.get_nodes_from_documents(documents)
        vectors = embedding.get_text_embedding_batch([node.get_content() for node in nodes])
        for node, vector in zip(nodes, vectors, strict=True):
            count = len(tokenizer(node.get_content(), truncation=False)["input_ids"])
            over_window += count > 256
            tokens += min(count, 256)
            rows.append((node.get_content(), vector))
        chunks += len(nodes)
    elapsed = time.perf_counter() - started
    cpu = sum(psutil.Process().cpu_times()[:2]) - cpu_start
    return {
        "seconds": elapsed,
        "pages": pages,
        "chunks": chunks,
        "tokens": tokens,
        "chunks_over_256_tokens": over_window,
        "pages_per_second": pages / elapsed,
        "chunks_per_second": chunks / elapsed,
        "tokens_per_second": tokens / elapsed,
        "forward_cpu_share": (meter.inside - forward_start) / cpu if cpu else None,
    }


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", nargs="*", default=DEFAULT_FILES)
    parser.add_argument("--big-text-pages", type=int, default=120)
    parser.add_argument("--big-mb", type=int, default=250)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()

    from gql_server.app import create_app
    from gql_server.settings import Settings
    from workers.pipeline.embedder import get_embedder

    work = Path(tempfile.mkdtemp(prefix="ragql-bench-"))
    password = "bench-password-123"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=work / "data",
        redis_url=None,
        superadmin_email="bench@example.com",
        superadmin_password=password,  # type: ignore[arg-type]
        max_upload_mb=max(1024, args.big_mb * 2),
        keep_original_files=False,
    )
    embedder = await asyncio.to_thread(get_embedder)
    meter = ForwardCpuMeter()
    meter.attach(embedder.model)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    lag = LoopLagMonitor()
    lag.start()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0]}}
    state = app.state.app_state
    from tests.factories import create_model

    model = await create_model(state.sessionmaker, name="bench")
    async with httpx.AsyncClient(timeout=3600) as http:
        login = await http.post(
            base + "/graphql",
            json={
                "query": "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { ... on AuthPayload { accessToken } } }",
                "variables": {"e": settings.superadmin_email, "p": password},
            },
        )
        token = login.json()["data"]["logIn"]["accessToken"]
        paths = [DOCS / name for name in args.files]
        # Part 1: ours, through the product.
        cpu_start = sum(psutil.Process().cpu_times()[:2])
        forward_start = meter.inside
        started = time.perf_counter()
        pages = chunks = tokens = 0
        for path in paths:
            document_id, _ = await _upload(http, base, token, str(model.id), path)
            document = await _wait(http, base, token, document_id)
            assert document["status"] == "READY", document
            pages += document["pageCount"] or 0
            chunks += document["chunkCount"]
            tokens += await _tokens_of(state.sessionmaker, document_id)
        elapsed = time.perf_counter() - started
        cpu = sum(psutil.Process().cpu_times()[:2]) - cpu_start
        results["ours"] = {
            "files": args.files,
            "seconds": elapsed,
            "pages": pages,
            "chunks": chunks,
            "tokens": tokens,
            "pages_per_second": pages / elapsed,
            "chunks_per_second": chunks / elapsed,
            "tokens_per_second": tokens / elapsed,
            "forward_cpu_share": (meter.inside - forward_start) / cpu if cpu else None,
            "event_loop_max_block_ms": lag.max_block * 1000,
        }
        print(json.dumps({"ours": results["ours"]}), file=sys.stderr)
        if not args.skip_reference:
            rows: list[tuple[str, list[float]]] = []
            reference = await asyncio.to_thread(run_reference, paths, meter, rows)
            # One INSERT per node, as a stock vector-store integration does; timed into the total.
            insert_started = time.perf_counter()
            async with state.engine.begin() as connection:
                from sqlalchemy import text as sql

                await connection.execute(
                    sql(
                        "CREATE TABLE reference_nodes (id bigserial primary key, text text, embedding vector(384))"
                    )
                )
                for node_text, vector in rows:
                    await connection.execute(
                        sql("INSERT INTO reference_nodes (text, embedding) VALUES (:t, CAST(:v AS vector))"),
                        {"t": node_text.replace("\x00", ""), "v": "[" + ",".join(map(str, vector)) + "]"},
                    )
            reference["insert_seconds"] = time.perf_counter() - insert_started
            reference["seconds"] += reference["insert_seconds"]
            for key, count in (
                ("pages_per_second", "pages"),
                ("chunks_per_second", "chunks"),
                ("tokens_per_second", "tokens"),
            ):
                reference[key] = reference[count] / reference["seconds"]
            results["reference"] = reference
            results["ratio_ours_over_reference_pages_per_second"] = (
                results["ours"]["pages_per_second"] / reference["pages_per_second"]
            )
            print(json.dumps({"reference": reference}), file=sys.stderr)
        if not args.skip_big:
            big = work / "big.pdf"
            page_count = await asyncio.to_thread(build_big_pdf, big, args.big_text_pages, args.big_mb)
            size_mb = big.stat().st_size / 2**20
            lag.reset()
            peaks = PeakRss().start()
            document_id, upload_seconds = await _upload(http, base, token, str(model.id), big)
            ingest_started = time.perf_counter()
            document = await _wait(http, base, token, document_id)
            ingest_seconds = time.perf_counter() - ingest_started
            peaks.stop()
            results["big_pdf"] = {
                "size_mb": size_mb,
                "pages": page_count,
                "text_pages": args.big_text_pages,
                "status": document["status"],
                "error": document["error"],
                "chunks": document["chunkCount"],
                "upload_seconds": upload_seconds,
                "upload_mb_per_second": size_mb / upload_seconds,
                "ingest_seconds": ingest_seconds,
                "server_and_worker_peak_rss_mb": peaks.server / 2**20,
                "pdf_reader_child_peak_rss_mb": peaks.children / 2**20,
                "event_loop_max_block_ms": lag.max_block * 1000,
            }
            print(json.dumps({"big_pdf": results["big_pdf"]}), file=sys.stderr)
    server.should_exit = True
    await serving
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
