"""Answers on real documents: page-exact retrieval and the extractive answerer, through the product.

    .venv/bin/python bench/answer_bench.py [--docs ../shared/data/docs] [--data-dir DIR]
                                           [--per-pdf 30] [--limit N] [--skip-chat] [--seed 11]

Question sets, built in this process from the PDFs and CSVs at the top level of --docs:

- quoted spans: `What does the document say about "<7 words>"?`, where the 7 consecutive
  words (whitespace-separated, as pypdf's `extract_text` gives the page — what the product
  indexes) occur on exactly one page of the whole collection; --per-pdf per PDF, sampled
  with --seed from the spans that hold at least three words of letters and no control
  characters;
- own words: a short hand-written list below (`OWN_WORDS`), each with the page or CSV data
  row that answers it (data row N = the N-th row after the header; a source counts when its
  row range holds N or the file line N + 1, because issue 11 may renumber rows);
- off-topic: general-knowledge questions the documents cannot answer (`OFF_TOPIC`).

It starts `ragql serve` (tests/serve_process.py) with a fresh data dir (or --data-dir,
reused when it already holds the bench's model with every document READY), creates an
EXTRACTIVE model, uploads every document through `uploadDocument` and waits for READY via
`document(id)`. Then:

- `search` (k=10) in HYBRID, LEXICAL and DENSE: page hit@1 and hit@5 (the passage's document
  is the question's and its page range holds the page);
- chat (unless --skip-chat): one session, `sendMessage` per question, then `chatMessage(id)`
  until it is no longer PENDING/STREAMING; page hit@1/@5 among the stored message's sources
  (in their numbered order), the share of answers that quote a sentence (≥ 20 characters,
  whitespace-normalised) of the right page, the share with a quote ending mid-sentence
  (the quote's last character not . ! ? : ; or a closing quote/bracket after one, or
  shortened with "…"; a strict check that counts whole table rows, headings and code lines as
  cut), the share with a quote cut inside its source (the quote's last words are found in the
  document text and the sentence goes on after them — see `_cut_in_source`), and the share of "documents don't answer this" replies (`ABSTAINS`)
  on off-topic vs on-topic questions.

Prints figures as it goes; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
SPAN_WORDS = 7
EMAIL = "answer-bench@example.com"
PASSWORD = "answer-bench-password-1"
MODEL_NAME = "answer-bench"

# Questions in our own words, with the page (PDF, 1-based as pypdf counts) or data row (CSV)
# that answers them. Written by reading those pages/rows; never used for tuning.
OWN_WORDS: list[tuple[str, str, int]] = [
    ("Is R case sensitive, so that A and a are different symbols?", "R-intro.pdf", 11),
    ("How do I make an empty numeric vector and then grow it by assigning past its end?", "R-intro.pdf", 21),
    ("How are several lists joined together into one list?", "R-intro.pdf", 36),
    ("Are functions such as mean and var themselves written in R?", "R-intro.pdf", 51),
    (
        "How can a nonlinear model be fitted by minimising the sum of squared errors with nlm?",
        "R-intro.pdf",
        71,
    ),
    (
        "What happens when vectors of different lengths are used in one arithmetic expression?",
        "R-intro.pdf",
        15,
    ),
    ("What is the outer product of two numeric arrays?", "R-intro.pdf", 29),
    ("Which functions give a quick numeric summary of the eruptions data?", "R-intro.pdf", 43),
    ("Do calls to par() inside a function change the global graphics parameters?", "R-intro.pdf", 81),
    (
        "When was Harry Palmer Jeffrey born and which state did he represent?",
        "fivethirtyeight__congress-demographics_data_aging_congress.csv",
        13406,
    ),
    (
        "How old was Shri Thanedar when he started in the 118th Congress?",
        "fivethirtyeight__congress-demographics_data_aging_congress.csv",
        26920,
    ),
    (
        "What is the birthday of Andrew Nicholas Petersen, representative from New York?",
        "fivethirtyeight__congress-demographics_data_aging_congress.csv",
        20747,
    ),
    (
        "Which poll of the 2022 Connecticut 2nd district House race did Fabrizio, Lee & Associates run for CT Examiner?",
        "fivethirtyeight__pollster-ratings_2023_raw-polls.csv",
        11108,
    ),
    (
        "What was the sample size of the Moore Information Group poll for Todd Akin in Missouri's 2nd district in 2000?",
        "fivethirtyeight__pollster-ratings_2023_raw-polls.csv",
        493,
    ),
    (
        "Which generic ballot poll did Opinium run for The Guardian in October 2020?",
        "fivethirtyeight__pollster-ratings_2023_raw-polls.csv",
        10614,
    ),
]

OFF_TOPIC = [
    "What is the capital of France?",
    "Who painted the Mona Lisa?",
    "How many moons does Jupiter have?",
    "What is the boiling point of water at sea level in Fahrenheit?",
    "Who wrote Pride and Prejudice?",
    "What is the tallest mountain in Africa?",
    "How do I bake sourdough bread at home?",
    "What year did the Berlin Wall fall?",
    "Which planet is known as the red planet?",
    "What is the chemical symbol for gold?",
    "Who won the FIFA World Cup in 2014?",
    "How long should I boil an egg for a soft yolk?",
    "What language is spoken in Brazil?",
    "What is the speed of light in a vacuum?",
    "Who composed the Four Seasons?",
    "How do I change a flat tyre on a bicycle?",
    "What is the largest ocean on Earth?",
    "What is photosynthesis in plants?",
    "Who was the first person to walk on the Moon?",
    "What is the population of Tokyo?",
    "How many bones are in the adult human body?",
    "What is the best way to train a puppy to sit?",
    "Which country has the most pyramids?",
    "What does a barista do?",
    "When is the best season to visit Iceland?",
    "How do vaccines train the immune system?",
    "What is the plot of Hamlet?",
    "What currency is used in Japan?",
    "Who discovered penicillin?",
    "How do I get red wine out of a carpet?",
]

# The "documents don't answer this" reply. Issue 11's answerer (H10) defines its wording;
# until then these are the replies the current extractive answerer gives when it has no
# passage, or no sentence sharing the question's words.
ABSTAINS = re.compile(
    r"couldn.t find anything|don.t (?:seem to )?(?:answer|cover|say)|do not (?:answer|cover)|"
    r"none of the documents|no (?:relevant )?(?:passage|information)|not (?:answered|covered) (?:by|in) the",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?:;][\"'”’)\]]*$")
_MARKER = re.compile(r"\s*\[\d+\](?:\s*\[\d+\])*\s*$")


@dataclass
class Question:
    kind: str  # "quote" | "own" | "off"
    text: str
    document: str | None = None
    page: int | None = None
    row: int | None = None
    span: str | None = None


@dataclass
class Tally:
    count: int = 0
    hit1: int = 0
    hit5: int = 0
    per_document: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))

    def add(self, question: Question, rank: int | None) -> None:
        self.count += 1
        self.hit1 += rank == 1
        self.hit5 += rank is not None and rank <= 5
        entry = self.per_document[question.document or "?"]
        entry[0] += 1
        entry[1] += rank == 1
        entry[2] += rank is not None and rank <= 5

    def figures(self) -> dict[str, Any]:
        return {
            "n": self.count,
            "hit@1": round(self.hit1 / self.count, 3) if self.count else None,
            "hit@5": round(self.hit5 / self.count, 3) if self.count else None,
            "per_document_hit@5": {name: f"{e[2]}/{e[0]}" for name, e in sorted(self.per_document.items())},
        }


def _normalise(text: str) -> str:
    return " ".join(text.split())


def read_pdf_pages(path: Path) -> list[str]:
    """Page texts exactly as the product's PDF reader child extracts them."""
    import pypdf

    reader = pypdf.PdfReader(path)
    pages = []
    for page in reader.pages:
        try:
            pages.append(page.extract_text() or "")
        except Exception:
            pages.append("")
    return pages


def quoted_span_questions(pages: dict[str, list[str]], per_pdf: int, seed: int) -> list[Question]:
    """Per PDF, `per_pdf` 7-word spans that occur on exactly one page of the collection."""
    pages_of_span: dict[tuple[str, ...], set[tuple[str, int]]] = defaultdict(set)
    for name, texts in pages.items():
        for number, text in enumerate(texts, start=1):
            words = text.split()
            for start in range(len(words) - SPAN_WORDS + 1):
                pages_of_span[tuple(words[start : start + SPAN_WORDS])].add((name, number))
    rng = random.Random(seed)
    questions: list[Question] = []
    for name in sorted(pages):
        candidates = sorted(
            (span, next(iter(where))[1])
            for span, where in pages_of_span.items()
            if len(where) == 1
            and next(iter(where))[0] == name
            and sum(1 for word in span if sum(ch.isalpha() for ch in word) >= 3) >= 3
            # A question cannot hold NUL or other control characters (the API refuses them).
            and all(word.isprintable() for word in span)
        )
        for span, page in rng.sample(candidates, min(per_pdf, len(candidates))):
            quoted = " ".join(span)
            questions.append(
                Question("quote", f'What does the document say about "{quoted}"?', name, page, span=quoted)
            )
    return questions


# --- the API --------------------------------------------------------------------------------------

UPLOAD = """mutation($modelId: UUID!, $file: Upload!) { uploadDocument(modelId: $modelId, file: $file) {
  __typename ... on DocumentUploaded { document { id } } ... on Error { message } } }"""
SEARCH = """query($m: UUID!, $q: String!, $mode: SearchMode!) { search(modelId: $m, query: $q, k: 10, mode: $mode) {
  __typename ... on SearchResults { passages { documentId pageStart pageEnd rowStart rowEnd text } }
  ... on Error { message } } }"""
SEND = """mutation($s: UUID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { __typename
  ... on MessageSent { assistantMessage { id } } ... on Error { message } } }"""
MESSAGE = """query($id: UUID!) { chatMessage(id: $id) { __typename ... on ChatMessage { status content error
  sources { number documentId pageStart pageEnd rowStart rowEnd } } } }"""


class Api:
    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http, self.base, self.token = http, base, ""

    async def log_in(self) -> None:
        self.token = ""
        login = await self.call(
            "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) "
            "{ __typename ... on AuthPayload { accessToken } } }",
            e=EMAIL,
            p=PASSWORD,
        )
        self.token = login["logIn"]["accessToken"]

    async def call(self, query: str, **variables: Any) -> dict[str, Any]:
        for attempt in range(5):
            response = await self.http.post(
                self.base + "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.token}"} if self.token else {},
            )
            if response.status_code == 429 and attempt < 4:
                await asyncio.sleep(1 + attempt)
                continue
            body = response.json()
            codes = {error.get("extensions", {}).get("code") for error in body.get("errors") or []}
            if "UNAUTHENTICATED" in codes and self.token and attempt < 4:
                await self.log_in()  # access tokens expire during a long run
                continue
            if body.get("errors"):
                raise RuntimeError(body["errors"])
            return dict(body["data"])
        raise RuntimeError("rate limited")

    async def upload(self, model_id: str, path: Path) -> str:
        with path.open("rb") as handle:
            response = await self.http.post(
                self.base + "/graphql",
                data={
                    "operations": json.dumps(
                        {"query": UPLOAD, "variables": {"modelId": model_id, "file": None}}
                    ),
                    "map": json.dumps({"0": ["variables.file"]}),
                },
                files={"0": (path.name, handle, "application/octet-stream")},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        result = response.json()["data"]["uploadDocument"]
        assert result["__typename"] == "DocumentUploaded", result
        return str(result["document"]["id"])


async def _prepare(api: Api, paths: list[Path]) -> tuple[str, dict[str, str], float]:
    """The bench model's id and {file name: document id}, ingesting what is missing."""
    await api.log_in()
    models = await api.call("query($s: String!) { models(search: $s) { items { id name } } }", s=MODEL_NAME)
    existing = [item for item in models["models"]["items"] if item["name"] == MODEL_NAME]
    if existing:
        model_id = str(existing[0]["id"])
    else:
        created = await api.call(
            'mutation { createModel(input: {name: "' + MODEL_NAME + '", provider: EXTRACTIVE}) '
            "{ __typename ... on Model { id } } }"
        )
        model_id = str(created["createModel"]["id"])
    listed = await api.call(
        "query($m: UUID!) { documents(modelId: $m, first: 100) { __typename ... on DocumentPage { items { id title filename status } } } }",
        m=model_id,
    )
    # Documents of an earlier run that are READY or still being ingested are kept.
    by_name = {
        item["filename"]: item["id"]
        for item in listed["documents"].get("items", [])
        if item["status"] != "FAILED"
    }
    # The model holds exactly the selected documents (an earlier run may have had others).
    wanted = {path.name for path in paths}
    for item in listed["documents"].get("items", []):
        if item["filename"] not in wanted or item["status"] == "FAILED":
            await api.call("mutation($id: UUID!) { deleteDocument(id: $id) { __typename } }", id=item["id"])
            by_name.pop(item["filename"], None)
    started = time.perf_counter()
    pending: dict[str, str] = {}
    for path in paths:
        if path.name in by_name:
            pending[path.name] = by_name[path.name]
        else:
            pending[path.name] = await api.upload(model_id, path)
    for name, document_id in pending.items():
        while True:
            document = (
                await api.call(
                    "query($id: UUID!) { document(id: $id) { status error chunkCount pageCount } }",
                    id=document_id,
                )
            )["document"]
            if document["status"] in ("READY", "FAILED"):
                break
            await asyncio.sleep(1.0)
        assert document["status"] == "READY", (name, document)
        print(f"  {name}: READY, {document['chunkCount']} chunks", file=sys.stderr)
        by_name[name] = document_id
    return model_id, by_name, time.perf_counter() - started


def _rank(question: Question, document_ids: dict[str, str], located: list[dict[str, Any]]) -> int | None:
    """1-based rank of the first passage/source at the question's page or row, else None."""
    wanted = document_ids.get(question.document or "")
    for rank, item in enumerate(located, start=1):
        if item["documentId"] != wanted:
            continue
        if question.page is not None and item["pageStart"] is not None:
            if item["pageStart"] <= question.page <= (item["pageEnd"] or item["pageStart"]):
                return rank
        if question.row is not None and item["rowStart"] is not None:
            last = item["rowEnd"] or item["rowStart"]
            if item["rowStart"] <= question.row <= last or item["rowStart"] <= question.row + 1 <= last:
                return rank
    return None


def _quotes(answer: str) -> list[str]:
    """The quoted passages of an extractive answer ("> text [n]" blocks), markers removed."""
    quotes = []
    for block in re.split(r"\n\s*\n", answer):
        lines = [line[1:].strip() for line in block.splitlines() if line.startswith(">")]
        if lines:
            quotes.append(_MARKER.sub("", " ".join(lines)).strip())
    return quotes


def _ends_mid_sentence(quote: str) -> bool:
    """The strict check: the quote's last character is not a sentence end."""
    return quote.endswith("…") or not _SENTENCE_END.search(quote)


_CONTINUES = re.compile(r"[a-z,(]")


def _cut_in_source(quote: str, sources: list[str]) -> bool:
    """Whether the quote stops where its source text goes on with the same sentence.

    A quote ending in . ! ? : ; is complete. Otherwise its last words are looked up in the
    document texts (line breaks kept): the quote is a whole line — a table row, a heading,
    a code line — when the source breaks the line right after it and the next line does not
    continue a sentence (it starts with a capital, a digit or a symbol, or a blank line
    follows); it is cut when the source goes on in the same line or wraps into a lowercase
    continuation. A quote whose tail is not found (the text differs after normalisation) is
    judged by the strict check.
    """
    if quote.endswith("…"):
        return True
    if _SENTENCE_END.search(quote):
        return False
    words = quote.split()[-6:]
    if not words:
        return False
    pattern = re.compile(r"\s+".join(re.escape(word) for word in words))
    found = False
    for source in sources:
        for match in pattern.finditer(source):
            found = True
            after = source[match.end() :]
            line_end = re.match(r"[ \t]*(\n|$)", after)
            if line_end is None:
                continue  # the line goes on in the source: look for another occurrence
            following = after[line_end.end() :].lstrip(" \t")
            if not following or following.startswith("\n") or not _CONTINUES.match(following):
                return False
    return True if found else _ends_mid_sentence(quote)


def _quotes_right_page(quotes: list[str], page_text: str) -> bool:
    page = _normalise(page_text)
    for quote in quotes:
        for sentence in re.split(r"(?<=[.!?])\s+", quote.rstrip("…")):
            sentence = _normalise(sentence)
            if len(sentence) >= 20 and sentence in page:
                return True
    return False


def _documents(docs: Path, only: list[str] | None) -> list[Path]:
    """The PDFs and CSVs at the top level of `docs` (optionally only names containing one of `only`)."""
    return sorted(
        path
        for path in docs.iterdir()
        if path.is_file()
        and path.suffix.lower() in (".pdf", ".csv")
        and (not only or any(part in path.name for part in only))
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.serve_process import ServeProcess

    docs = Path(args.docs)
    paths = _documents(docs, args.only)
    logging.disable(logging.WARNING)  # pypdf's font warnings
    pages = {p.name: read_pdf_pages(p) for p in paths if p.suffix.lower() == ".pdf"}
    quote_questions = quoted_span_questions(pages, args.per_pdf, args.seed)
    own = [
        Question(
            "own",
            text,
            name,
            page=number if name.endswith(".pdf") else None,
            row=number if name.endswith(".csv") else None,
        )
        for text, name, number in OWN_WORDS
        if name in {path.name for path in paths}
    ]
    off = [Question("off", text) for text in OFF_TOPIC]
    if args.limit:
        quote_questions = quote_questions[: args.limit]
        own, off = own[: args.limit], off[: args.limit]
    print(
        f"questions: {len(quote_questions)} quoted spans over {len(pages)} PDFs, {len(own)} own words, "
        f"{len(off)} off-topic",
        file=sys.stderr,
    )

    data_dir = (
        Path(args.data_dir)
        if args.data_dir
        else Path(tempfile.mkdtemp(prefix="ragql-answer-bench-")) / "data"
    )
    serve = ServeProcess(
        data_dir,
        env={
            "SUPERADMIN_EMAIL": EMAIL,
            "SUPERADMIN_PASSWORD": PASSWORD,
            "KEEP_ORIGINAL_FILES": "false",
            "LOG_LEVEL": "WARNING",
        },
    ).start(timeout=300)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "seed": args.seed,
        "questions": {"quote": len(quote_questions), "own": len(own), "off": len(off)},
    }
    try:
        async with httpx.AsyncClient(timeout=600) as http:
            api = Api(http, serve.base_url)
            model_id, document_ids, ingest_seconds = await _prepare(api, paths)
            results["ingest_seconds"] = round(ingest_seconds, 1)
            # search
            search: dict[str, dict[str, Tally]] = {}
            latencies: list[float] = []
            for mode in ("HYBRID", "LEXICAL", "DENSE"):
                tallies = {"quote": Tally(), "own": Tally()}
                for question in quote_questions + own:
                    started = time.perf_counter()
                    data = await api.call(SEARCH, m=model_id, q=question.text, mode=mode)
                    if mode == "HYBRID":
                        latencies.append(time.perf_counter() - started)
                    passages = data["search"].get("passages", [])
                    tallies[question.kind].add(question, _rank(question, document_ids, passages))
                search[mode] = tallies
                print(
                    f"search {mode}: quoted hit@1 {tallies['quote'].figures()['hit@1']} "
                    f"hit@5 {tallies['quote'].figures()['hit@5']}; own words hit@5 {tallies['own'].figures()['hit@5']}",
                    file=sys.stderr,
                )
            latencies.sort()
            results["search"] = {
                mode: {kind: tally.figures() for kind, tally in tallies.items()}
                for mode, tallies in search.items()
            }
            results["search_latency_p50_ms_through_api"] = round(latencies[len(latencies) // 2] * 1000, 1)
            if not args.skip_chat:
                results["chat"] = await _chat(api, model_id, document_ids, pages, quote_questions, own, off)
    finally:
        serve.stop()
    results["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return results


async def _chat(
    api: Api,
    model_id: str,
    document_ids: dict[str, str],
    pages: dict[str, list[str]],
    quote_questions: list[Question],
    own: list[Question],
    off: list[Question],
) -> dict[str, Any]:
    started = await api.call(
        'mutation($m: UUID!) { startChatSession(modelId: $m, title: "bench") { __typename ... on ChatSession { id } } }',
        m=model_id,
    )
    session_id = started["startChatSession"]["id"]
    tallies = {"quote": Tally(), "own": Tally()}
    right_page = Counter[str]()
    mid_sentence = Counter[str]()
    cut = Counter[str]()
    cut_examples: list[dict[str, str]] = []
    sources_text = ["\n".join(texts) for texts in pages.values()]
    abstained = Counter[str]()
    asked = Counter[str]()
    examples: list[dict[str, Any]] = []
    for question in quote_questions + own + off:
        sent = (await api.call(SEND, s=session_id, c=question.text))["sendMessage"]
        assert sent["__typename"] == "MessageSent", sent
        message_id = sent["assistantMessage"]["id"]
        while True:
            message = (await api.call(MESSAGE, id=message_id))["chatMessage"]
            if message["status"] not in ("PENDING", "STREAMING"):
                break
            await asyncio.sleep(0.05)
        content = message["content"] or ""
        asked[question.kind] += 1
        quotes = _quotes(content)
        abstains = bool(ABSTAINS.search(content))
        abstained[question.kind] += abstains
        mid_sentence[question.kind] += any(_ends_mid_sentence(quote) for quote in quotes)
        cut_quotes = [quote for quote in quotes if _cut_in_source(quote, sources_text)]
        cut[question.kind] += bool(cut_quotes)
        if cut_quotes and len(cut_examples) < 10:
            cut_examples.append({"question": question.text, "quote": cut_quotes[0][-160:]})
        if question.kind != "off":
            sources = sorted(message["sources"], key=lambda source: source["number"])
            tallies[question.kind].add(question, _rank(question, document_ids, sources))
        if question.kind == "quote":
            assert question.document is not None and question.page is not None
            hit = _quotes_right_page(quotes, pages[question.document][question.page - 1])
            right_page["quote"] += hit
            if not hit and len(examples) < 3:
                examples.append({"question": question.text, "page": question.page, "answer": content[:400]})
    figures: dict[str, Any] = {kind: tally.figures() for kind, tally in tallies.items()}
    figures["quote_answers_quoting_right_page"] = round(right_page["quote"] / max(asked["quote"], 1), 3)
    figures["answers_with_a_quote_ending_mid_sentence"] = {
        kind: round(mid_sentence[kind] / asked[kind], 3) for kind in asked
    }
    figures["answers_with_a_quote_cut_in_its_source"] = {
        kind: round(cut[kind] / asked[kind], 3) for kind in asked
    }
    figures["abstention_rate"] = {kind: round(abstained[kind] / asked[kind], 3) for kind in asked}
    figures["misses_examples"] = examples
    figures["cut_examples"] = cut_examples
    print(
        f"chat: {json.dumps({k: v for k, v in figures.items() if not k.endswith('_examples')})}",
        file=sys.stderr,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", default=str(DOCS))
    parser.add_argument("--data-dir", help="reuse this data dir (its bench model's READY documents are kept)")
    parser.add_argument("--per-pdf", type=int, default=30)
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions of each kind")
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only", nargs="*", help="only the documents whose file names contain one of these")
    results = asyncio.run(run(parser.parse_args()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
