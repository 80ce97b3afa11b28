"""The built-in answerer: quotes the passages' most relevant sentences, no language model needed.

It is the default so a fresh install answers questions before anyone configures an LLM.
Relevance is lexical overlap between the question's content words and each sentence,
which is deterministic, explainable ("these are the sentences that mention your words")
and takes microseconds. Retrieval already ranked the passages semantically, so a small
bonus for a passage's rank keeps the quotes anchored in the best passages.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gql_server.llm.base import (
    ConnectionCheck,
    ContextPassage,
    GenerationEvent,
    GenerationRequest,
    TokenDelta,
)

NO_PASSAGES_ANSWER = "I couldn't find anything about this in the model's documents."

# Only the best passages are quoted: lower-ranked ones rarely add more than noise.
PASSAGES_CONSIDERED = 5
MAX_QUOTED_SENTENCES = 3
MAX_SENTENCES_PER_PASSAGE = 2
RELATIVE_SCORE_CUTOFF = 0.5
# A "sentence" from a table or a run-on paragraph can be huge; quotes stay readable.
MAX_SENTENCE_CHARACTERS = 400

_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves tell explain describe please give list show does did
    many much say says said""".split()
)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before
# whitespace, or at a line break; tables and lists have lines rather than sentences.
_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+|\n+")
_STREAM_CHUNK = re.compile(r"\s*\S+\s*")


@dataclass
class ScoredSentence:
    passage_rank: int
    position: int
    text: str
    score: float


def _content_terms(text: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1}


def _stem(word: str) -> str:
    # Just enough folding that "batteries"/"battery" and "charging"/"charges"/"charge" meet.
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("e", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_BOUNDARY.split(text) if part and part.strip()]


def _shortened(sentence: str) -> str:
    sentence = " ".join(sentence.split())
    if len(sentence) <= MAX_SENTENCE_CHARACTERS:
        return sentence
    return sentence[: MAX_SENTENCE_CHARACTERS - 1].rsplit(" ", 1)[0] + "…"


def select_sentences(question: str, passages: list[ContextPassage]) -> list[ScoredSentence]:
    """The sentences to quote, in reading order (by passage rank, then position)."""
    question_terms = _content_terms(question)
    candidates: list[ScoredSentence] = []
    for rank, passage in enumerate(passages[:PASSAGES_CONSIDERED]):
        for position, sentence in enumerate(_sentences(passage.text)):
            matched = question_terms & _content_terms(sentence)
            if not matched:
                continue
            # Distinct question words matched dominate; rank only breaks near-ties.
            score = len(matched) - 0.1 * rank
            candidates.append(ScoredSentence(rank, position, sentence, score))

    if not candidates:
        return []
    # Sentences sharing far fewer words with the question than the best one are noise.
    cutoff = max(candidate.score for candidate in candidates) * RELATIVE_SCORE_CUTOFF
    chosen: list[ScoredSentence] = []
    per_passage: dict[int, int] = {}
    for candidate in sorted(candidates, key=lambda c: (-c.score, c.passage_rank, c.position)):
        if candidate.score < cutoff:
            break
        if per_passage.get(candidate.passage_rank, 0) >= MAX_SENTENCES_PER_PASSAGE:
            continue
        chosen.append(candidate)
        per_passage[candidate.passage_rank] = per_passage.get(candidate.passage_rank, 0) + 1
        if len(chosen) == MAX_QUOTED_SENTENCES:
            break
    return sorted(chosen, key=lambda c: (c.passage_rank, c.position))


def compose_extractive_answer(question: str, passages: list[ContextPassage]) -> str:
    if not passages:
        return NO_PASSAGES_ANSWER
    chosen = select_sentences(question, passages)
    if not chosen:
        # None of the question's words occur, but retrieval still judged the top passage
        # closest in meaning; show its opening and say so rather than claim nothing exists.
        top = passages[0]
        opening = _sentences(top.text)[:1] or [top.text]
        return (
            "None of the documents use the words of your question; the closest passage says:\n\n"
            f"> {_shortened(opening[0])} [{top.number}]"
        )
    quotes: list[str] = []
    for rank in dict.fromkeys(sentence.passage_rank for sentence in chosen):
        passage = passages[rank]
        text = " ".join(_shortened(s.text) for s in chosen if s.passage_rank == rank)
        quotes.append(f"> {text} [{passage.number}]")
    return "Based on the documents:\n\n" + "\n\n".join(quotes)


class ExtractiveProvider:
    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        answer = compose_extractive_answer(request.question, request.passages)
        for chunk in _STREAM_CHUNK.findall(answer):
            yield TokenDelta(chunk)
            # Give the event loop a turn so subscribers see a stream, not one burst.
            await asyncio.sleep(0)
        # No language model ran, so there is no token usage to report.

    async def check_connection(self) -> ConnectionCheck:
        return ConnectionCheck(
            ok=True, message="The built-in extractive answerer needs no connection.", latency_ms=0.0
        )

    async def aclose(self) -> None:
        return None
