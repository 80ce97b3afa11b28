"""The built-in answerer on generated documents: whole sentences, distinctive terms, CSV rows as a
table, and a plain "the documents don't answer this" when the evidence is weak (with the signal in
the API). Also: answers cut off by the model's token limit are flagged, per provider."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from gql_server.db.models import ProviderKind
from gql_server.llm.base import ContextPassage, Finish, TokenDelta, Usage
from gql_server.llm.extractive import (
    ABSTENTION_ANSWER,
    Evidence,
    assess,
    compose_extractive_answer,
    split_units,
)
from gql_server.llm.registry import build_provider
from gql_server.rag.prompt import WEAK_EVIDENCE_INSTRUCTION, build_generation_request
from tests.chat_support import FAKES, chat_world, send_ok, start_session
from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.fake_llm_servers import DEFAULT_MODEL_NAME, FakeBehaviour
from tests.graphql_client import GraphQLClient
from tests.test_llm_providers import REMOTE_CASES, RemoteProviderCase, make_config, make_request

ANSWER = """
query Answer($id: UUID!) {
  chatMessage(id: $id) {
    __typename
    ... on ChatMessage { content status evidence truncated citations
                         tokenUsage { promptTokens completionTokens }
                         sources { number cited locationLabel rowStart rowEnd preview documentTitle
                                   table { columns rows { dataRow cells } } } }
  }
}
"""
DONE = """
subscription Stream($messageId: UUID!) {
  messageStream(messageId: $messageId, afterSeq: 0) {
    __typename
    ... on DoneEvent { status text evidence truncated usage { promptTokens completionTokens } }
    ... on ErrorEvent { message }
  }
}
"""

# --- generated text ---------------------------------------------------------------------------

# Sentences with the things that break naive splitting: abbreviations, initials, codes,
# version and section numbers, decimals, parentheses and quotes.
SENTENCE_PIECES = [
    "The message CFOL029 means the record was not found (see Fig. 3).",
    "Values such as 3.5 and 12.25 are rounded, e.g. to one decimal.",
    "Dr. J. Smith of the U.S. office wrote the report in 2019.",
    "Version v1.2 replaced version 1.1 in Sec. 4.2 of the manual.",
    "Use the command BMFOL, i.e. the business master file lookup.",
    "An entry marked “CFOL030” is a duplicate and is ignored.",
    "Codes like IRS-7731 are listed in Table 4, vol. 2, pp. 10–12.",
    "Why does the screen go blank?",
    "The ratio was 0.75 (approx.) in most regions.",
    "Payments are due on the 15th; late ones cost 2.5% a month.",
    "Each notice carries a reference number and a date.",
    "Agents must check the taxpayer's address first!",
]
TABLE_ROWS = ["LINE   POSITION   DESCRIPTION", "1   10-15   Taxpayer name", "2   16-20   Address line"]
BULLETS = ["- Check the notice date.", "- Check the amount due."]


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines


def generated_page(rng: random.Random) -> tuple[str, list[str]]:
    """A page as a PDF extractor gives it (paragraphs wrapped at a random width, a table and
    bullets), and the units it is made of."""
    units: list[str] = []
    blocks: list[str] = []
    for _ in range(rng.randint(2, 4)):
        paragraph = rng.sample(SENTENCE_PIECES, rng.randint(2, 5))
        units.extend(paragraph)
        blocks.append("\n".join(_wrap(" ".join(paragraph), rng.randint(45, 90))))
        if rng.random() < 0.4:
            blocks.append("\n".join(TABLE_ROWS))
            units.extend(" ".join(row.split()) for row in TABLE_ROWS)
        if rng.random() < 0.3:
            blocks.append("\n".join(BULLETS))
            units.extend(BULLETS)
    return "\n\n".join(blocks), units


_SENTENCE_END = re.compile(r"[.!?:;…][\"'”’)\]]*$")


def quoted_blocks(answer: str) -> list[str]:
    quotes = []
    for block in re.split(r"\n\s*\n", answer):
        lines = [line[1:].strip() for line in block.splitlines() if line.startswith(">")]
        if lines:
            quotes.append(re.sub(r"\s*\[\d+\]\s*$", "", " ".join(lines)))
    return quotes


def test_units_are_whole_sentences_and_lines_whatever_the_wrapping() -> None:
    rng = random.Random(11)
    for _ in range(300):
        page, expected = generated_page(rng)
        units = split_units(page)
        assert [unit.text for unit in units] == expected, page
        assert all(unit.complete for unit in units)


def test_quotes_never_end_mid_sentence_even_when_the_passage_is_cut() -> None:
    rng = random.Random(29)
    words = sorted({word.strip(".,;()“”!?") for piece in SENTENCE_PIECES for word in piece.split()})
    for _ in range(300):
        page, expected = generated_page(rng)
        # Chunks can start and end anywhere: a sentence's tail, or a sentence cut short.
        start = rng.randint(0, 40)
        end = len(page) - rng.randint(0, 60)
        passage = ContextPassage(1, "Manual", page[start:end], "p. 3", 0.5)
        question = " ".join(rng.sample(words, 3)) + "?"
        answer = compose_extractive_answer(question, [passage])
        for quote in quoted_blocks(answer):
            assert not quote.endswith("…")
            for piece in _pieces(quote, expected):
                assert piece in expected, (quote, page[start:end])


def _pieces(quote: str, expected: list[str]) -> list[str]:
    """The units a quote joined (a passage's quoted units are joined with spaces)."""
    pieces: list[str] = []
    rest = quote
    while rest:
        match = next(
            (unit for unit in sorted(expected, key=len, reverse=True) if rest.startswith(unit)), None
        )
        if match is None:
            return [rest]
        pieces.append(match)
        rest = rest[len(match) :].lstrip()
    return pieces


def test_a_distinctive_code_outweighs_common_words() -> None:
    generic = ContextPassage(
        1,
        "Manual",
        "Each error message has a meaning that the operator must look up in the message list. "
        "The message list is updated every year.",
        "p. 2",
        0.8,
    )
    specific = ContextPassage(
        3, "Manual", "CFOL029: the record was not found on the master file.", "p. 41", 0.6
    )
    # IDF as the BM25 statistics give it: "message" is in most chunks, the code in one.
    weights = {"message": 0.2, "mean": 0.3, "cfol029": 6.5}
    answer = compose_extractive_answer("What does the message CFOL029 mean?", [generic, specific], weights)
    quotes = quoted_blocks(answer)
    assert quotes and quotes[0] == "CFOL029: the record was not found on the master file."
    assert "[3]" in answer and "operator" not in answer


def test_a_quoted_phrase_picks_the_sentence_that_holds_it() -> None:
    passage = ContextPassage(
        1,
        "Guide",
        "Lists can hold any objects. Several lists are joined with the function c() into one list. "
        "A list is indexed with double brackets.",
        "p. 36",
        0.5,
    )
    answer = compose_extractive_answer(
        'What does the document say about "joined with the function c()"?', [passage]
    )
    assert quoted_blocks(answer)[0].startswith(
        "Several lists are joined with the function c() into one list."
    )


def test_weak_evidence_gives_the_fixed_reply_and_the_llm_prompt_says_so() -> None:
    passages = [
        ContextPassage(
            1, "Pollster ratings", "pollster: YouGov | state: VA | margin: 3.1", "data row 7", 0.2, 0.12
        ),
        ContextPassage(
            2, "Pollster ratings", "pollster: Ipsos | state: TX | margin: 1.0", "data row 8", 0.1, 0.1
        ),
    ]
    weights = {"capital": 7.0, "france": 7.5}
    assessment = assess("What is the capital of France?", passages, weights)
    assert assessment.evidence is Evidence.WEAK
    answer = compose_extractive_answer("What is the capital of France?", passages, weights)
    assert answer.startswith(ABSTENTION_ANSWER) and "|" not in answer
    request = build_generation_request(
        None, passages, [], "What is the capital of France?", 4096, 256, evidence="WEAK"
    )
    assert WEAK_EVIDENCE_INSTRUCTION in request.messages[-1].content
    strong = build_generation_request(None, passages, [], "What margin?", 4096, 256, evidence="STRONG")
    assert WEAK_EVIDENCE_INSTRUCTION not in strong.messages[-1].content


def test_csv_rows_become_a_table_with_their_data_row_numbers() -> None:
    passage = ContextPassage(
        2,
        "parts",
        "part_number: QX-7731 | description: hex bolt | price: 0.40\n"
        "part_number: QX-7732 | description: washer | price: 0.05\n"
        "part_number: ZZ-1000 | description: hex nut | price: 0.10",
        "data rows 11–13",
        0.5,
    )
    answer = compose_extractive_answer("What is the price of part QX-7732?", [passage])
    # The marker is followed by a period: "[2]:" would be a Markdown link reference, not a chip.
    assert "Data row 12 of parts [2].\n" in answer
    assert "| Data row | part_number | description | price |" in answer
    assert "| 12 | QX-7732 | washer | 0.05 |" in answer
    assert "QX-7731" not in answer and "ZZ-1000" not in answer


def test_spreadsheet_rows_become_a_table_with_the_sheets_own_row_numbers() -> None:
    # A sheet's rows are typed on the passage (retrieval's row_start/row_end); the label names
    # the sheet, whose "2" in "Q2" is not a row number.
    passage = ContextPassage(
        1,
        "budget",
        "item: printer toner | cost: 120\nitem: desk lamps | cost: 45",
        "Sheet 'Q2', rows 12–13",
        0.5,
        row_start=12,
        row_end=13,
        row_noun="Row",
    )
    answer = compose_extractive_answer("What did the desk lamps cost?", [passage])
    assert "Row 13 of budget (Sheet 'Q2', rows 12–13) [1].\n" in answer, answer
    assert "| Row | item | cost |" in answer and "| 13 | desk lamps | 45 |" in answer, answer
    assert "printer toner" not in answer and ">" not in answer


# --- through the product ------------------------------------------------------------------------

MANUAL = "\n\n".join(
    [
        "Notice handling manual for the records office.",
        "Every notice carries a message code. The message code tells the clerk what to do next. "
        "Message codes are printed on the first page of the notice.",
        "The clerk files each notice in the notice register before the end of the day. "
        "A notice that cannot be filed is returned to the sender with a message.",
        "CFOL029 means the taxpayer record was not found on the master file. "
        "The clerk then asks the sender for the taxpayer identification number.",
        "Notices older than ninety days are archived in the basement register.",
    ]
).encode()
PARTS_CSV = (
    b"part_number,description,price,supplier\n"
    b"QX-7731,hex bolt,0.40,Acme\n"
    b"QX-7732,washer,0.05,Acme\n"
    b"ZZ-1000,hex nut,0.10,Bolt & Co\n"
)


async def ingest(admin: GraphQLClient, model_id: object, filename: str, content: bytes) -> str:
    document_id = await upload_document(admin, str(model_id), filename, content)
    document = await wait_for_final(admin, document_id)
    assert document["status"] == "READY", document
    return document_id


async def ask(world: Any, session_id: str, question: str) -> tuple[dict[str, Any], dict[str, Any]]:
    message_id = await send_ok(world.client, session_id, question)
    async with world.client.subscription_connection() as socket:
        operation = await socket.subscribe(DONE, {"messageId": message_id})
        done: dict[str, Any] = {}
        async for payload in socket.results(operation, 30):
            assert not payload.get("errors"), payload
            done = payload["data"]["messageStream"]
    stored = (await world.client.execute(ANSWER, {"id": message_id}))["chatMessage"]
    return done, stored


@pytest.mark.asyncio
async def test_off_topic_questions_get_the_fixed_reply_and_on_topic_ones_an_answer(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    world = await chat_world(server)
    await ingest(superadmin, world.model.id, "notice-manual.txt", MANUAL)
    session_id = await start_session(world.client, world.model.id)

    done, stored = await ask(world, session_id, "What is the capital of France?")
    assert stored["content"].startswith(ABSTENTION_ANSWER), stored["content"]
    assert stored["evidence"] == "WEAK" and done["evidence"] == "WEAK"
    assert ">" not in stored["content"]

    done, stored = await ask(world, session_id, "What does the message CFOL029 mean?")
    assert stored["evidence"] == "STRONG" and done["evidence"] == "STRONG"
    quotes = quoted_blocks(stored["content"])
    assert quotes[0].startswith("CFOL029 means the taxpayer record was not found on the master file."), quotes
    assert not stored["content"].startswith(ABSTENTION_ANSWER)
    assert stored["citations"] and stored["truncated"] is False


@pytest.mark.asyncio
async def test_a_question_about_a_csv_row_is_answered_with_the_row_as_a_table(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    world = await chat_world(server)
    await ingest(superadmin, world.model.id, "parts_list.csv", PARTS_CSV)
    session_id = await start_session(world.client, world.model.id)
    _, stored = await ask(world, session_id, "What is the price of part QX-7732?")
    content = stored["content"]
    assert stored["evidence"] == "STRONG", content
    assert "| Data row | part_number | description | price | supplier |" in content
    assert "| 2 | QX-7732 | washer | 0.05 | Acme |" in content
    assert "QX-7731" not in content
    source = next(source for source in stored["sources"] if source["cited"])
    assert source["documentTitle"] == "parts list"
    assert source["locationLabel"] == "data rows 1–3" and (source["rowStart"], source["rowEnd"]) == (1, 3)
    assert source["table"]["columns"] == ["part_number", "description", "price", "supplier"]
    assert source["table"]["rows"][1] == {"dataRow": 2, "cells": ["QX-7732", "washer", "0.05", "Acme"]}


@pytest.mark.asyncio
async def test_a_model_without_documents_reports_no_evidence(server: RunningServer) -> None:
    world = await chat_world(server)
    session_id = await start_session(world.client, world.model.id)
    done, stored = await ask(world, session_id, "What is the warranty?")
    assert stored["content"].startswith(ABSTENTION_ANSWER) and stored["evidence"] == "NONE"
    assert done["evidence"] == "NONE"


# --- answers cut off by the token limit --------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("case", REMOTE_CASES, ids=str)
@pytest.mark.parametrize("cut", [True, False], ids=["cut-off", "finished"])
async def test_each_provider_says_whether_the_token_limit_cut_the_answer(
    case: RemoteProviderCase, cut: bool
) -> None:
    fake = case.server_class(FakeBehaviour(tokens=["one", " two"], hit_token_limit=cut))
    async with fake.serve():
        provider = build_provider(make_config(case, fake.base_url))
        try:
            events = [event async for event in provider.stream(make_request())]
        finally:
            await provider.aclose()
    assert "".join(e.text for e in events if isinstance(e, TokenDelta)) == "one two"
    finishes = [event for event in events if isinstance(event, Finish)]
    assert len(finishes) == 1 and finishes[0].truncated is cut
    assert any(isinstance(event, Usage) for event in events)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", list(FAKES), ids=lambda kind: kind.value)
async def test_a_cut_off_answer_is_stored_and_streamed_as_truncated(
    server: RunningServer, kind: ProviderKind
) -> None:
    fake = FAKES[kind](FakeBehaviour(tokens=["The answer", " stops here because"], hit_token_limit=True))
    async with fake.serve():
        world = await chat_world(
            server,
            provider=kind,
            base_url=fake.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
            api_key="test-key",
        )
        session_id = await start_session(world.client, world.model.id)
        done, stored = await ask(world, session_id, "Tell me everything")
    assert done["__typename"] == "DoneEvent" and done["truncated"] is True
    assert stored["status"] == "COMPLETE" and stored["truncated"] is True
    assert stored["content"] == "The answer stops here because"


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", [ProviderKind.OPENAI_COMPATIBLE, ProviderKind.OLLAMA], ids=lambda k: k.value)
async def test_unreported_token_usage_is_unknown_not_zero(server: RunningServer, kind: ProviderKind) -> None:
    fake = FAKES[kind](FakeBehaviour(tokens=["Short", " answer."], report_usage=False))
    async with fake.serve():
        world = await chat_world(
            server,
            provider=kind,
            base_url=fake.base_url,
            llm_model_name=DEFAULT_MODEL_NAME,
            api_key="test-key",
        )
        session_id = await start_session(world.client, world.model.id)
        done, stored = await ask(world, session_id, "Anything?")
    assert stored["content"] == "Short answer." and stored["truncated"] is False
    assert stored["tokenUsage"] is None and done["usage"] is None
