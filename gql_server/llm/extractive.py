"""The built-in answerer: quotes whole sentences of the best passages, or says the documents don't answer.

It is the default so a fresh install answers questions before anyone configures an LLM.
Everything here is deterministic, explainable ("these are the sentences that hold your
words") and takes about a millisecond.

Units. A passage is cut into units that are never fragments (`split_units`): prose lines
that a PDF wrapped are joined again and cut into sentences at . ! ? (not after
abbreviations such as "e.g." or "Fig.", initials, or inside numbers and codes such as
"3.5" or "v1.2"); bullets, table rows (cells apart by runs of spaces, tabs or "|"),
headings and code lines are units of their own. A unit counts as complete when it is a
whole sentence (ends with . ! ? : ; or …, maybe followed by a closing quote or bracket) or
a whole line of a list or table; the last prose unit of a passage that stops without such
an ending, and a first unit that starts in lower case (the passage began inside a
sentence), are incomplete and never quoted. Nothing is ever shortened.

Relevance. A unit scores the summed weight of the question's terms it holds. The weights
are the terms' BM25 IDF in the model's corpus (`GenerationRequest.term_weights`, from the
statistics tables retrieval keeps: gql_server.rag.evidence), so a code such as CFOL029
that occurs in three chunks counts far more than "message" in three thousand. A phrase the
question puts in quotes found whole in a unit, and pairs of consecutive question terms
found next to each other, add their weight again. Passage rank only breaks near-ties.

Evidence. `assess` also decides whether the passages answer the question at all: STRONG
when the best unit holds a quoted phrase of the question, or enough of the question's
weight (`coverage`), helped by the dense similarity of the passage when that is high; WEAK
otherwise; NONE when there are no passages. The thresholds were calibrated on on-topic
and off-topic questions that are not the answer bench's (bench/abstention_calibration.py,
figures in docs/benchmarks.md). On WEAK and NONE the answer starts with the fixed sentence
`ABSTENTION_ANSWER`; the stored message carries the evidence, so nobody needs to parse it.

CSV passages are rows ("column: value | column: value" per line, numbered from the
chunk's first data row): the matching rows are shown as a Markdown table with their data
row numbers instead of being quoted.
"""

from __future__ import annotations

import asyncio
import enum
import math
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from gql_server.llm.base import (
    ConnectionCheck,
    ContextPassage,
    GenerationEvent,
    GenerationRequest,
    TokenDelta,
)

# The one sentence every abstaining reply starts with (documented in README "Chat").
ABSTENTION_ANSWER = "The documents don't answer this question."
NO_PASSAGES_ANSWER = f"{ABSTENTION_ANSWER} I couldn't find anything about it in the model's documents."
ANSWER_LEAD = "Based on the documents:"

# Only the best passages are quoted: lower-ranked ones rarely add more than noise.
PASSAGES_CONSIDERED = 5
MAX_QUOTED_UNITS = 3
MAX_UNITS_PER_PASSAGE = 2
# Other units are quoted next to the best one only when they score at least this share of it.
RELATIVE_SCORE_CUTOFF = 0.6
# A unit longer than this is a flattened table or page, not a sentence worth quoting.
MAX_UNIT_CHARACTERS = 900
MAX_TABLE_ROWS = 8
MAX_TABLE_COLUMNS = 8


@dataclass(frozen=True)
class EvidenceThresholds:
    """When the passages count as answering (bench/abstention_calibration.py; module docstring)."""

    # Share of the question's IDF weight the best unit holds.
    strong_coverage: float = 0.6
    # A passage the embedding finds this close is on topic even when it words things
    # differently, as long as the best unit still holds `similar_coverage` of the weight.
    # Calibration (150 SciFact train claims over 606 abstracts vs 60 unrelated questions):
    # 0.90 of on-topic answered, 0.983 of off-topic abstained; (0.5, 0.4, 0.2) gives
    # 0.907 / 0.933, the first defaults (0.6, 0.55, 0.3) 0.633 / 0.983.
    similar_passage: float = 0.4
    similar_coverage: float = 0.2


DEFAULT_THRESHOLDS = EvidenceThresholds()

_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves tell explain describe please give list show
    many much say says said document documents mean means meaning
    take takes took make makes made use used using get gets got need needs know want wants work
    way ways long happen happens kind kinds type types thing things something anything one also
    like well""".split()
)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STREAM_CHUNK = re.compile(r"\s*\S+\s*")
_QUOTED = re.compile(r'["“”„«»]([^"“”„«»]+?)["“”„«»]')


class Evidence(enum.Enum):
    """How well the retrieved passages support an answer."""

    STRONG = "STRONG"
    WEAK = "WEAK"
    NONE = "NONE"


# --- units --------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*•▪◦●‣·–—]|\(?\d{1,3}[.)]|\(?[a-z][.)]|\(?[A-Z]\)|\[\d{1,3}\])\s+")
# How a sentence may begin: a capital, or a bullet, quote or bracket before one.
_STARTS_SENTENCE = re.compile(r"^(?:[-*•▪◦●‣·–—]\s+|\(?\d{1,3}[.)]\s+)?[\"'“‘(\[]?[^\W\d_a-z]")
_SYMBOL_BULLET = re.compile(r"^\s*[-*•▪◦●‣·–—]\s+")
_CELL_GAP = re.compile(r"\t|\s{3,}|\s\|\s")
_NUMERIC_TOKEN = re.compile(r"^[\d.,:/%$€£()+\-–]+$")
_TERMINAL = re.compile(r"(?:[.!?…:;]|\.\.\.)[\"'”’)\]]*$")
# A candidate sentence end: punctuation, maybe closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"([.!?]+)([\"'”’)\]]*)(\s+)")
_ABBREVIATIONS = frozenset(
    """e.g i.e cf vs al fig figs eq eqs no nos p pp vol vols ch chap sec sect dr mr mrs ms prof st jr sr
    inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec approx dept est resp ref refs ed
    eds ca viz op art para pt tab min max u.s u.k e.u z.b bzw usw ggf vgl""".split()
)


@dataclass(frozen=True)
class Unit:
    """A sentence or a whole line of a passage; `text` has its whitespace normalised."""

    text: str
    complete: bool
    kind: str  # "sentence" | "line"


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _is_table_line(line: str) -> bool:
    stripped = line.strip()
    if stripped.count("|") >= 2 or (_CELL_GAP.search(stripped) and len(stripped.split()) >= 2):
        return True
    tokens = stripped.split()
    # A row of figures ("Alabama 1,234 5,678 9,012"); prose citing numbers ends like prose.
    numeric = sum(bool(_NUMERIC_TOKEN.match(token)) for token in tokens)
    return len(tokens) >= 3 and numeric * 5 >= len(tokens) * 3 and not _TERMINAL.search(stripped)


def _is_code_line(line: str) -> bool:
    stripped = line.strip()
    # Prompts, assignments, braces, a lone call: "> x <- c(1, 2)", "y = f(x)", "} else {", "plot(x)".
    return stripped.startswith(("> ", "$ ", ">>> ", "+ ")) or bool(
        re.search(r"<-|[{}]\s*$|^[\w.$]+\s*=\s*\S|^[\w.$]+\([^()]*\)\s*;?$", stripped)
    )


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether the punctuation matched inside `text` ends a sentence."""
    after = text[match.end() :]
    if not after:
        return True
    following = after[0]
    if not (following.isupper() or following.isdigit() or following in "\"'“‘([•-–"):
        return False
    if match.group(1) != ".":
        return True  # ! ? and "..." end sentences before a capital
    before = text[: match.start()]
    word_match = re.search(r"(\S+)$", before)
    if word_match is None:
        return False
    word = word_match.group(1).lstrip("(\"'“‘[")
    bare = word.lower().rstrip(".")
    if bare in _ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith", "Appendix A. The" is rarer than initials
    # "U.S." and "e.g." are abbreviations; "v1.2." and "3.5." are not.
    parts = [part for part in word.rstrip(".").split(".") if part]
    return not (len(parts) > 1 and all(part.isalpha() and len(part) <= 2 for part in parts))


def _split_sentences(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if _ends_sentence(text, match):
            end = match.start(3)
            pieces.append(text[start:end])
            start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _segments(text: str) -> list[tuple[str, str]]:
    """(kind, text) runs: prose lines joined again, other lines alone."""
    segments: list[tuple[str, str]] = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        widest = max(len(line.strip()) for line in lines)
        prose: list[str] = []

        def flush(prose: list[str] = prose) -> None:
            if prose:
                segments.append(("prose", " ".join(prose)))
                prose.clear()

        for index, raw in enumerate(lines):
            line = raw.strip()
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            previous = lines[index - 1].strip() if index else ""
            # "12. Next" starts an item only after a line that ended; else it is a wrapped number.
            if _SYMBOL_BULLET.match(raw) or (
                _BULLET.match(raw) and (not previous or _TERMINAL.search(previous) or _BULLET.match(previous))
            ):
                flush()
            elif _is_table_line(raw) or (_is_code_line(raw) and not prose):
                flush()
                segments.append(("line", line))
                continue
            prose.append(line)
            # A short line with no sentence end, before a capitalised one, is a heading or
            # the last line of a paragraph: what follows starts afresh.
            short = len(line) < 0.6 * widest and widest > 40
            if (
                short
                and following
                and not line.endswith(("-", ",", "("))
                and (following[:1].isupper() or _BULLET.match(following))
            ):
                flush()
        flush()
    return segments


def split_units(text: str) -> list[Unit]:
    """The passage as sentences and whole lines, in reading order (see the module docstring)."""
    units: list[Unit] = []
    segments = _segments(text)
    for segment_index, (kind, segment) in enumerate(segments):
        last_segment = segment_index == len(segments) - 1
        if kind == "line":
            units.append(Unit(_normalised(segment), True, "line"))
            continue
        sentences = _split_sentences(segment)
        for index, sentence in enumerate(sentences):
            normalised = _normalised(sentence)
            ends = bool(_TERMINAL.search(normalised))
            last = index == len(sentences) - 1
            # Inside a passage, a run that stops without punctuation ended at a line break
            # followed by something else (a heading, a list, a table): a whole line. At the
            # very end of the passage it may have been cut by the chunker.
            complete = ends or (last and not last_segment)
            unit_kind = "sentence" if ends else "line"
            if not units and kind == "prose" and not _STARTS_SENTENCE.match(normalised):
                complete = False  # the passage starts inside a sentence
            units.append(Unit(normalised, complete, unit_kind))
    return units


# --- terms and weights --------------------------------------------------------------------


def _stem(word: str) -> str:
    # Just enough folding that "batteries"/"battery" and "charging"/"charges"/"charge" meet.
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("e", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _is_code(word: str) -> bool:
    return any(ch.isdigit() for ch in word) and any(ch.isalpha() for ch in word)


@dataclass
class QuestionTerms:
    """The question's content terms (stemmed) with their weights, in question order."""

    order: list[str]
    weights: dict[str, float]
    phrases: list[list[str]]

    @property
    def total(self) -> float:
        return sum(self.weights.values())


def question_terms(question: str, term_weights: dict[str, float] | None = None) -> QuestionTerms:
    """`term_weights` maps lower-case question words to their IDF; words missing from it are
    stop words in the database's dictionary. Without it every content word weighs 1, codes 3."""
    order: list[str] = []
    weights: dict[str, float] = {}
    for word in _words(question):
        if term_weights is not None:
            weight = term_weights.get(word)
            if weight is None or word in _STOPWORDS:
                continue
        else:
            if word in _STOPWORDS or len(word) < 2:
                continue
            weight = 3.0 if _is_code(word) else 1.0
        stem = _stem(word)
        if stem not in weights:
            order.append(stem)
        weights[stem] = max(weights.get(stem, 0.0), weight)
    phrases = []
    for quoted in _QUOTED.findall(question):
        stems = [_stem(word) for word in _words(quoted)]
        if len(stems) >= 2:
            phrases.append(stems)
    return QuestionTerms(order, weights, phrases)


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    width = len(needle)
    return any(haystack[start : start + width] == needle for start in range(len(haystack) - width + 1))


# --- scoring and evidence -----------------------------------------------------------------


@dataclass
class ScoredUnit:
    passage_rank: int
    position: int
    unit: Unit
    score: float
    coverage: float
    phrase: bool


@dataclass
class Assessment:
    evidence: Evidence
    chosen: list[ScoredUnit] = field(default_factory=list)
    coverage: float = 0.0
    similarity: float | None = None
    phrase: bool = False

    def features(self) -> dict[str, float | bool | None]:
        """What the verdict was based on (stored with the answer's timings, for calibration)."""
        return {
            "coverage": round(self.coverage, 4),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "phrase": self.phrase,
        }


def _score_unit(terms: QuestionTerms, unit: Unit) -> tuple[float, float, bool]:
    stems = [_stem(word) for word in _words(unit.text)]
    present = set(stems)
    matched = [term for term in terms.order if term in present]
    if not matched:
        return 0.0, 0.0, False
    weight = sum(terms.weights[term] for term in matched)
    coverage = weight / terms.total if terms.total else 0.0
    score = weight
    phrase = any(_contains_run(stems, phrase) for phrase in terms.phrases)
    if phrase:
        score += weight
        coverage = 1.0
    # Consecutive question terms side by side in the unit: the question's wording.
    adjacent = {(a, b) for a, b in zip(stems, stems[1:], strict=False)}
    for first, second in zip(terms.order, terms.order[1:], strict=False):
        if (first, second) in adjacent:
            score += 0.5 * (terms.weights[first] + terms.weights[second])
    return score, coverage, phrase


def _rows(passage: ContextPassage) -> tuple[int, int] | None:
    """The passage's first and last table row, when it holds table rows.

    Retrieval gives them typed (`row_start`/`row_end`); a passage built without them (tests,
    benches) is read from a CSV label such as "data rows 11–13"."""
    if passage.row_start is not None:
        return passage.row_start, passage.row_end if passage.row_end is not None else passage.row_start
    if not passage.location_label.startswith("data row"):
        return None
    match = _ROW_RANGE.search(passage.location_label)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or match.group(1))


def _is_csv(passage: ContextPassage) -> bool:
    return _rows(passage) is not None


def assess(
    question: str,
    passages: list[ContextPassage],
    term_weights: dict[str, float] | None = None,
    thresholds: EvidenceThresholds = DEFAULT_THRESHOLDS,
) -> Assessment:
    """The evidence the passages give for the question, and the units worth quoting."""
    if not passages:
        return Assessment(Evidence.NONE)
    terms = question_terms(question, term_weights)
    similarities = [p.similarity for p in passages[:PASSAGES_CONSIDERED] if p.similarity is not None]
    similarity = max(similarities) if similarities else None
    if not terms.weights:
        return Assessment(Evidence.WEAK, similarity=similarity)
    candidates: list[ScoredUnit] = []
    for rank, passage in enumerate(passages[:PASSAGES_CONSIDERED]):
        for position, unit in enumerate(_passage_units(passage)):
            if not unit.complete or len(unit.text) > MAX_UNIT_CHARACTERS or len(unit.text) < 3:
                continue
            score, coverage, phrase = _score_unit(terms, unit)
            if score <= 0:
                continue
            # Rank breaks near-ties only: a tenth of the lightest term per rank.
            score -= 0.1 * min(terms.weights.values()) * rank
            candidates.append(ScoredUnit(rank, position, unit, score, coverage, phrase))
    if not candidates:
        return Assessment(Evidence.WEAK, similarity=similarity)
    ordered = sorted(candidates, key=lambda c: (-c.score, c.passage_rank, c.position))
    best = ordered[0]
    strong = (
        best.phrase
        or best.coverage >= thresholds.strong_coverage
        or (
            best.coverage >= thresholds.similar_coverage
            and similarity is not None
            and similarity >= thresholds.similar_passage
        )
    )
    if not strong:
        return Assessment(Evidence.WEAK, coverage=best.coverage, similarity=similarity, phrase=best.phrase)
    chosen: list[ScoredUnit] = []
    per_passage: dict[int, int] = {}
    seen: set[str] = set()
    for candidate in ordered:
        if candidate.score < best.score * RELATIVE_SCORE_CUTOFF:
            break
        if per_passage.get(candidate.passage_rank, 0) >= MAX_UNITS_PER_PASSAGE or candidate.unit.text in seen:
            continue
        chosen.append(candidate)
        seen.add(candidate.unit.text)
        per_passage[candidate.passage_rank] = per_passage.get(candidate.passage_rank, 0) + 1
        if len(chosen) == MAX_QUOTED_UNITS:
            break
    return Assessment(
        Evidence.STRONG, chosen, coverage=best.coverage, similarity=similarity, phrase=best.phrase
    )


def _passage_units(passage: ContextPassage) -> list[Unit]:
    if _is_csv(passage):
        return [Unit(_normalised(line), True, "line") for line in passage.text.splitlines() if line.strip()]
    return split_units(passage.text)


# --- CSV rows -----------------------------------------------------------------------------

_ROW_RANGE = re.compile(r"(\d+)(?:\s*[–-]\s*(\d+))?")


def parse_csv_row(line: str) -> list[tuple[str, str]]:
    """`column: value | column: value` (as workers/pipeline/parse_csv.py renders a row) as pairs."""
    cells: list[tuple[str, str]] = []
    for part in line.split(" | "):
        name, separator, value = part.partition(": ")
        if separator:
            cells.append((name.strip(), value.strip()))
        elif cells:  # a value holding " | ": it belongs to the previous cell
            cells[-1] = (cells[-1][0], f"{cells[-1][1]} | {part.strip()}")
        else:
            cells.append(("", part.strip()))
    return cells


def csv_row_numbers(first: int, last: int, line_count: int) -> list[int | None]:
    """The row number of each line of a table passage, when its row range fits the lines
    (a row spread over several chunks, skipped blank rows or a cell holding a line break leave
    them unknown)."""
    if last - first + 1 != line_count:
        return [None] * line_count
    return list(range(first, last + 1))


def _cell(text: str) -> str:
    return _normalised(text).replace("|", "\\|") or " "


def csv_table(
    rows: list[tuple[int | None, list[tuple[str, str]]]], matched: set[str], row_noun: str = "Data row"
) -> str:
    """A Markdown table of CSV rows: their data row number, then their columns in file order
    (at most MAX_TABLE_COLUMNS; columns whose name or values hold a question term are kept first)."""
    columns: list[str] = []
    for _, cells in rows:
        for name, _value in cells:
            if name not in columns:
                columns.append(name)
    if len(columns) > MAX_TABLE_COLUMNS:
        texts = {
            name: " ".join([name] + [dict(cells).get(name, "") for _, cells in rows]) for name in columns
        }
        relevant = [name for name in columns if any(_stem(w) in matched for w in _words(texts[name]))]
        keep = set((relevant + [name for name in columns if name not in relevant])[:MAX_TABLE_COLUMNS])
        columns = [name for name in columns if name in keep]
    header = f"| {row_noun} | " + " | ".join(_cell(name) for name in columns) + " |"
    rule = "|---:|" + "---|" * len(columns)
    lines = [header, rule]
    for number, cells in rows:
        values = dict(cells)
        lines.append(
            f"| {number if number is not None else '?'} | "
            + " | ".join(_cell(values.get(name, "")) for name in columns)
            + " |"
        )
    return "\n".join(lines)


# --- composing ----------------------------------------------------------------------------


def compose_extractive_answer(
    question: str,
    passages: list[ContextPassage],
    term_weights: dict[str, float] | None = None,
    assessment: Assessment | None = None,
) -> str:
    if not passages:
        return NO_PASSAGES_ANSWER
    if assessment is None:
        assessment = assess(question, passages, term_weights)
    if assessment.evidence is not Evidence.STRONG or not assessment.chosen:
        # Said plainly, with a pointer to the closest passage for whoever wants to look.
        return f"{ABSTENTION_ANSWER} The closest passage is [{passages[0].number}]."
    terms = question_terms(question, term_weights)
    blocks: list[str] = []
    by_rank: dict[int, list[ScoredUnit]] = {}
    for scored in assessment.chosen:
        by_rank.setdefault(scored.passage_rank, []).append(scored)
    for rank, chosen in by_rank.items():
        passage = passages[rank]
        if _is_csv(passage):
            blocks.append(_csv_block(passage, terms))
            continue
        text = " ".join(scored.unit.text for scored in sorted(chosen, key=lambda s: s.position))
        blocks.append(f"> {text} [{passage.number}]")
    return f"{ANSWER_LEAD}\n\n" + "\n\n".join(blocks)


def _csv_block(passage: ContextPassage, terms: QuestionTerms) -> str:
    """The passage's best-matching rows (all those tied with the best) as a table."""
    lines = [line for line in passage.text.splitlines() if line.strip()]
    first, last = _rows(passage) or (0, -1)
    numbers = csv_row_numbers(first, last, len(lines))
    scores = [_score_unit(terms, Unit(_normalised(line), True, "line"))[0] for line in lines]
    best = max(scores, default=0.0)
    rows = [
        (number, parse_csv_row(line))
        for number, line, score in zip(numbers, lines, scores, strict=True)
        if best > 0 and score >= best * 0.999
    ][:MAX_TABLE_ROWS]
    shown = ", ".join(str(number) for number, _ in rows if number is not None)
    # "[n]." and not "[n]:", which Markdown reads as a link reference definition.
    noun = passage.row_noun if len(rows) == 1 else passage.row_noun + "s"
    if shown and passage.row_noun == "Data row":
        lead = f"{noun} {shown} of {passage.document_title} [{passage.number}]."
    elif shown:  # a sheet or a table: the label says which ("Sheet 'Q2', rows 12–30")
        lead = f"{noun} {shown} of {passage.document_title} ({passage.location_label}) [{passage.number}]."
    else:
        lead = f"Rows of {passage.document_title} ({passage.location_label}) [{passage.number}]."
    return lead + "\n\n" + csv_table(rows, set(terms.weights), passage.row_noun)


def _iter_chunks(answer: str) -> Iterable[str]:
    return _STREAM_CHUNK.findall(answer)


class ExtractiveProvider:
    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        answer = compose_extractive_answer(request.question, request.passages, request.term_weights)
        for chunk in _iter_chunks(answer):
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


def idf(chunk_count: int, document_frequency: int) -> float:
    """BM25's IDF, as retrieval computes it (gql_server/rag/retrieval.py)."""
    return math.log(1.0 + (chunk_count - document_frequency + 0.5) / (document_frequency + 0.5))
