"""Turning retrieved passages, chat history and a question into a prompt that fits the model.

The numbered passages go into the final user message, next to the question, not into
the system prompt: each question brings its own passages, so they belong to that turn.
This keeps the system prompt identical across turns (prompt caches stay valid), keeps
earlier turns free of stale passages, and small local models follow context placed right
before the question more reliably than context in a long system prompt.

Budget priority, highest first: system prompt and question (never dropped), passages in
rank order (the lowest-ranked go first when they do not all fit; a lone top passage that
is too long is shortened), then as much history as still fits, newest turns first and
only whole turns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from gql_server.llm.base import ChatTurn, ContextPassage, GenerationRequest

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant that answers questions about a collection of documents. "
    "Answer using only the numbered context passages given with each question. "
    "Cite passages as [n] right after the statement they support, for example [1] or [2][3]. "
    "If the passages do not contain the answer, say that the documents do not cover it; "
    "do not guess and do not use outside knowledge. Answer in the language of the question."
)

CITATION_INSTRUCTION = (
    "Answer the question using only the passages above. Cite the passages you use as [n] after "
    "the statements they support. If they do not contain the answer, say so."
)

# When few of the question's distinctive words occur in the passages (evidence WEAK, see
# gql_server/llm/extractive.assess), the model is told so: small models otherwise answer
# from whatever they were given. The reply it is asked for is the built-in answerer's.
WEAK_EVIDENCE_INSTRUCTION = (
    "These passages may not answer the question: few of its distinctive words occur in them. "
    'If they do not answer it, reply: "The documents don\'t answer this question."'
)

NO_PASSAGES_INSTRUCTION = (
    "No passages in the documents matched this question. Unless the conversation so far already "
    "answers it, say that the documents do not cover it."
)

# Chat templates wrap every message in role markers; a few tokens each, counted so that
# a long history of short turns does not overflow the window unnoticed.
MESSAGE_OVERHEAD_TOKENS = 4

# Shortening the only passage below this leaves too little to be worth sending.
MIN_USEFUL_PASSAGE_TOKENS = 32

TRUNCATION_MARK = " …"


def approximate_token_count(text: str) -> int:
    """About four characters per token, the usual rule of thumb for English with BPE tokenizers.

    It overestimates for plain English and underestimates for code and non-Latin
    scripts; callers with a real tokenizer should pass it instead.
    """
    return math.ceil(len(text) / 4)


def format_passage(passage: ContextPassage) -> str:
    location = f" ({passage.location_label})" if passage.location_label else ""
    return f"[{passage.number}] {passage.document_title}{location}\n{passage.text.strip()}"


def format_question_message(
    passages: list[ContextPassage], question: str, evidence: str | None = None
) -> str:
    if not passages:
        return f"{NO_PASSAGES_INSTRUCTION}\n\nQuestion: {question}"
    passages_block = "\n\n".join(format_passage(passage) for passage in passages)
    instruction = CITATION_INSTRUCTION
    if evidence == "WEAK":
        instruction = f"{CITATION_INSTRUCTION} {WEAK_EVIDENCE_INSTRUCTION}"
    return f"Context passages:\n\n{passages_block}\n\nQuestion: {question}\n\n{instruction}"


def build_generation_request(
    system_prompt: str | None,
    passages: list[ContextPassage],
    history: list[ChatTurn],
    question: str,
    context_window_tokens: int,
    max_output_tokens: int,
    count_tokens: Callable[[str], int] = approximate_token_count,
    evidence: str | None = None,
    term_weights: dict[str, float] | None = None,
) -> GenerationRequest:
    """A request whose prompt fits in `context_window_tokens - max_output_tokens`.

    `passages` must be ordered best first; the request keeps a prefix of them, so their
    numbers stay as given and `GenerationRequest.passages` says which ones the model saw
    (use those numbers to validate citations). If even the system prompt and question do
    not fit, the request carries just those: dropping the question would answer nothing.
    `evidence` ("STRONG" | "WEAK" | "NONE") and `term_weights` are passed on to the request;
    WEAK evidence adds `WEAK_EVIDENCE_INSTRUCTION` to the question message.
    """
    system = system_prompt.strip() if system_prompt and system_prompt.strip() else DEFAULT_SYSTEM_PROMPT
    input_budget = context_window_tokens - max_output_tokens
    # The question message is counted whole, as it will be sent, rather than as a sum of
    # parts: exact for any tokenizer, and a handful of passages makes this cheap.
    system_cost = count_tokens(system) + MESSAGE_OVERHEAD_TOKENS

    def question_message_cost(candidate_passages: list[ContextPassage]) -> int:
        return (
            count_tokens(format_question_message(candidate_passages, question, evidence))
            + MESSAGE_OVERHEAD_TOKENS
        )

    passage_budget = input_budget - system_cost
    kept_passages: list[ContextPassage] = []
    for passage in passages:
        if question_message_cost([*kept_passages, passage]) > passage_budget:
            break
        kept_passages.append(passage)
    if passages and not kept_passages:
        shortened = _top_passage_shortened_to_fit(passages[0], passage_budget, question_message_cost)
        kept_passages = [shortened] if shortened is not None else []

    question_message = format_question_message(kept_passages, question, evidence)
    history_budget = passage_budget - question_message_cost(kept_passages)
    kept_history = _recent_history_within(history, history_budget, count_tokens)

    messages = [*kept_history, ChatTurn(role="user", content=question_message)]
    return GenerationRequest(
        system_prompt=system,
        messages=messages,
        passages=kept_passages,
        question=question,
        term_weights=term_weights,
        evidence=evidence,
    )


def _top_passage_shortened_to_fit(
    passage: ContextPassage, budget: int, question_message_cost: Callable[[list[ContextPassage]], int]
) -> ContextPassage | None:
    """The passage cut at a word boundary so the question message fits, if enough of it can."""
    text = passage.text.strip()
    spare_for_text = budget - question_message_cost([_with_text(passage, "")])
    if spare_for_text < MIN_USEFUL_PASSAGE_TOKENS:
        return None
    # Binary search on the length: the counter need not be linear in characters.
    shortest, longest = 0, len(text)
    best: ContextPassage | None = None
    while shortest <= longest:
        middle = (shortest + longest) // 2
        candidate = _with_text(passage, text[:middle].rsplit(" ", 1)[0] + TRUNCATION_MARK)
        if question_message_cost([candidate]) <= budget:
            best = candidate
            shortest = middle + 1
        else:
            longest = middle - 1
    return best


def _with_text(passage: ContextPassage, text: str) -> ContextPassage:
    return dataclasses.replace(passage, text=text)


def _recent_history_within(
    history: list[ChatTurn], budget: int, count_tokens: Callable[[str], int]
) -> list[ChatTurn]:
    kept_newest_first: list[ChatTurn] = []
    for turn in reversed(history):
        cost = count_tokens(turn.content) + MESSAGE_OVERHEAD_TOKENS
        if cost > budget:
            # Stop rather than skip: a conversation with a hole in it misleads the model.
            break
        kept_newest_first.append(turn)
        budget -= cost
    kept = list(reversed(kept_newest_first))
    # An answer whose question was cut off reads as if the assistant spoke first.
    while kept and kept[0].role == "assistant":
        kept.pop(0)
    return kept
