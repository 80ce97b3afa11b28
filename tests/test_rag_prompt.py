"""Prompt budgeting and citation cleaning."""

from __future__ import annotations

import pytest

from gql_server.llm.base import ChatTurn, ContextPassage
from gql_server.rag.citations import extract_citations
from gql_server.rag.prompt import (
    DEFAULT_SYSTEM_PROMPT,
    MESSAGE_OVERHEAD_TOKENS,
    approximate_token_count,
    build_generation_request,
)


def passage(number: int, words: int = 50) -> ContextPassage:
    text = " ".join(f"fact{number}-{index}" for index in range(words))
    return ContextPassage(
        number=number,
        document_title=f"Doc {number}",
        text=text,
        location_label=f"p. {number}",
        score=1 / number,
    )


def conversation(turn_pairs: int, words_per_turn: int = 20) -> list[ChatTurn]:
    turns: list[ChatTurn] = []
    for index in range(turn_pairs):
        turns.append(ChatTurn("user", f"question {index} " + "word " * words_per_turn))
        turns.append(ChatTurn("assistant", f"answer {index} " + "word " * words_per_turn))
    return turns


def prompt_tokens(request_messages: list[ChatTurn], system_prompt: str) -> int:
    return (
        approximate_token_count(system_prompt)
        + MESSAGE_OVERHEAD_TOKENS
        + sum(approximate_token_count(turn.content) + MESSAGE_OVERHEAD_TOKENS for turn in request_messages)
    )


def test_approximate_token_count_is_about_four_characters_per_token() -> None:
    assert approximate_token_count("") == 0
    assert approximate_token_count("abcd") == 1
    assert approximate_token_count("abcde") == 2


def test_everything_fits_in_a_large_window() -> None:
    history = conversation(2)
    request = build_generation_request(
        None, [passage(1), passage(2)], history, "What is fact 1?", 32_000, 1_000
    )

    assert request.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert request.messages[:-1] == history
    final = request.messages[-1]
    assert final.role == "user"
    assert "[1] Doc 1 (p. 1)\nfact1-0" in final.content
    assert "[2] Doc 2 (p. 2)" in final.content
    assert final.content.index("[2] Doc 2") < final.content.index("Question: What is fact 1?")
    assert "[n]" in final.content
    assert [p.number for p in request.passages] == [1, 2]
    assert request.question == "What is fact 1?"


def test_custom_system_prompt_is_used_and_blank_means_default() -> None:
    custom = build_generation_request("Be brief.", [], [], "Hi?", 4096, 256)
    blank = build_generation_request("   ", [], [], "Hi?", 4096, 256)
    assert custom.system_prompt == "Be brief."
    assert blank.system_prompt == DEFAULT_SYSTEM_PROMPT


def test_without_passages_the_model_is_told_so() -> None:
    request = build_generation_request(None, [], [], "Anything about X?", 4096, 256)
    assert "No passages" in request.messages[-1].content
    assert request.messages[-1].content.endswith("Question: Anything about X?")
    assert request.passages == []


@pytest.mark.parametrize("window", [700, 900, 1200, 2000, 4000])
def test_prompt_stays_within_the_window_minus_the_output_budget(window: int) -> None:
    request = build_generation_request(
        None, [passage(n) for n in range(1, 8)], conversation(10), "What about fact 3?", window, 256
    )
    assert prompt_tokens(request.messages, request.system_prompt) <= window - 256
    assert "What about fact 3?" in request.messages[-1].content


def test_lowest_ranked_passages_are_dropped_first_and_passages_beat_history() -> None:
    passages = [passage(n, words=60) for n in range(1, 6)]
    # Room for the system prompt, the question and roughly two passages.
    request = build_generation_request(None, passages, conversation(3), "Q?", 256 + 600, 256)
    kept = [p.number for p in request.passages]
    assert kept == list(range(1, len(kept) + 1))
    assert 1 <= len(kept) < 5
    assert "[5] Doc 5" not in request.messages[-1].content
    assert len(request.messages) == 1  # no room left for history


def test_history_is_kept_newest_first_in_whole_turns_and_never_starts_with_an_answer() -> None:
    history = conversation(6, words_per_turn=40)
    request = build_generation_request(None, [passage(1)], history, "Q?", 1200, 256)
    kept_history = request.messages[:-1]
    assert kept_history, "some history should fit"
    assert len(kept_history) < len(history)
    # A suffix of the conversation, unchanged turns, starting with a question.
    assert kept_history == history[-len(kept_history) :]
    assert kept_history[0].role == "user"


def test_the_question_is_never_dropped_even_when_nothing_else_fits() -> None:
    question = "Why " + "really " * 300 + "?"
    request = build_generation_request(None, [passage(1)], conversation(3), question, 300, 256)
    assert request.messages == [request.messages[-1]]
    assert question in request.messages[-1].content
    assert request.passages == []


def test_a_single_passage_too_long_for_the_window_is_shortened_not_dropped() -> None:
    long_passage = passage(1, words=2_000)
    request = build_generation_request(None, [long_passage, passage(2)], [], "Q?", 1_500, 256)
    assert len(request.passages) == 1
    shortened = request.passages[0]
    assert shortened.number == 1
    assert shortened.text.endswith("…")
    assert len(shortened.text) < len(long_passage.text)
    assert prompt_tokens(request.messages, request.system_prompt) <= 1_500 - 256


def test_a_custom_token_counter_is_used() -> None:
    def count_words(text: str) -> int:
        return len(text.split())

    passages = [passage(n, words=100) for n in range(1, 4)]
    request = build_generation_request(None, passages, [], "Q?", 256 + 350, 256, count_tokens=count_words)
    # ~100 words per passage plus the framing: two passages fit by words, not by characters.
    assert [p.number for p in request.passages] == [1, 2]


# --- citations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "valid", "expected_text", "expected_cited"),
    [
        ("It charges in 90 minutes [1].", {1}, "It charges in 90 minutes [1].", [1]),
        ("It charges [7].", {1, 2}, "It charges.", []),
        ("A [2] and B [1] and again [2].", {1, 2}, "A [2] and B [1] and again [2].", [2, 1]),
        ("Both [1, 3].", {1, 2}, "Both [1].", [1]),
        ("Both [1,2].", {1, 2}, "Both [1, 2].", [1, 2]),
        ("Grouped [1][9][2].", {1, 2}, "Grouped [1][2].", [1, 2]),
        ("None valid [8][9] here.", {1}, "None valid here.", []),
        ("Spaced [ 2 ; 9 ] ok", {2}, "Spaced [2] ok", [2]),
        ("Range [1-3].", {1, 2, 3, 4}, "Range [1, 2, 3].", [1, 2, 3]),
        ("Range [2–9].", {1, 2}, "Range [2].", [2]),
        ("[9] Starts a line.\n[1] Second line.", {1}, "Starts a line.\n[1] Second line.", [1]),
        ("Duplicates [1, 1].", {1}, "Duplicates [1].", [1]),
        ("See [link](http://x) and [1](http://y).", {1}, "See [link](http://x) and [1](http://y).", []),
        ("Code `items[0]` and [0].", {1}, "Code `items[0]` and.", []),
        ("```\nvalues[3] = 1\n```\nDone [3].", {1}, "```\nvalues[3] = 1\n```\nDone.", []),
        ("No citations at all.", {1}, "No citations at all.", []),
        ("", {1}, "", []),
    ],
)
def test_extract_citations(text: str, valid: set[int], expected_text: str, expected_cited: list[int]) -> None:
    assert extract_citations(text, valid) == (expected_text, expected_cited)
