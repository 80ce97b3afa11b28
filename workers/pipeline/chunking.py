"""Semantic chunking of prose, capped at the embedding model's 256-token window.

LlamaIndex's `SemanticSplitterNodeParser` (a product requirement) embeds, for every
sentence, the window of `buffer_size` sentences around it; with the default buffer of 1
that embeds the document three times, and its chunks have no size limit. The subclass
here keeps its breakpoint rule (cosine distance between neighbouring windows above a
percentile) but embeds every sentence exactly once and builds each window's vector as
the normalized mean of its sentences' vectors. Chunks larger than the model's window are
then split at their most dissimilar sentence boundary, recursively, and single sentences
longer than the window are cut at line breaks, else between words.
"""

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.node_parser import SemanticSplitterNodeParser
from llama_index.core.node_parser.node_utils import build_nodes_from_splits
from llama_index.core.schema import BaseNode, Document

from gql_server.embedding.embedder import SentenceEmbedder
from workers.pipeline.chunk import Chunk
from workers.pipeline.sentence_splitting import make_sentence_splitter


class LlamaIndexEmbeddingAdapter(BaseEmbedding):
    """Exposes a `SentenceEmbedder` as a LlamaIndex `BaseEmbedding` (for the semantic splitter)."""

    _embedder: SentenceEmbedder = PrivateAttr()

    def __init__(self, embedder: SentenceEmbedder, embed_batch_size: int = 256, **kwargs: Any) -> None:
        super().__init__(
            model_name="sentence-transformers/all-MiniLM-L6-v2", embed_batch_size=embed_batch_size, **kwargs
        )
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "LlamaIndexEmbeddingAdapter"

    @property
    def embedder(self) -> SentenceEmbedder:
        return self._embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


# [CLS] and [SEP] take two of the model's 256 positions.
_SPECIAL_TOKENS = 2
# Pieces smaller than this are merged into a neighbour when it fits: a lone heading or
# page number retrieves nothing useful on its own.
MIN_CHUNK_TOKENS = 32
# Sentences shorter than this are joined to the following one before embedding.
MIN_SENTENCE_TOKENS = 24
# A recursive split never leaves a side smaller than this (unless no boundary allows it),
# so capping does not shave one sentence off at a time.
_MIN_SPLIT_SIDE_TOKENS = 48
_SEGMENT_SEPARATOR = "\n\n"
# Sentence units embedded between two progress reports (a multiple of the batch size).
_UNITS_PER_PROGRESS_STEP = 256

EmbeddingProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class LocatedText:
    """Text from one place in a document: a page of a PDF, or a block of lines of a text file."""

    text: str
    page_number: int | None = None
    first_line: int | None = None


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int  # character offsets into the window text
    end: int
    content_tokens: int


class CappedSemanticSplitter(SemanticSplitterNodeParser):
    """`SemanticSplitterNodeParser` that embeds each sentence once and caps chunk size in tokens."""

    max_chunk_tokens: int = 256
    # Embeds the sentence pass when set (see `embedder.get_boundary_embedder`); the
    # adapter's embedder still counts tokens and defines the stored vectors.
    _boundary_embedder: SentenceEmbedder | None = PrivateAttr(default=None)

    @classmethod
    def for_embedder(
        cls,
        embedder: SentenceEmbedder,
        breakpoint_percentile_threshold: int = 95,
        buffer_size: int = 1,
        boundary_embedder: SentenceEmbedder | None = None,
    ) -> "CappedSemanticSplitter":
        splitter = cls(
            embed_model=LlamaIndexEmbeddingAdapter(embedder),
            breakpoint_percentile_threshold=breakpoint_percentile_threshold,
            buffer_size=buffer_size,
            sentence_splitter=make_sentence_splitter(),
            max_chunk_tokens=embedder.max_tokens,
            include_metadata=True,
            include_prev_next_rel=True,
        )
        if boundary_embedder is not None and boundary_embedder is not embedder:
            splitter._boundary_embedder = boundary_embedder
        return splitter

    @classmethod
    def class_name(cls) -> str:
        return "CappedSemanticSplitter"

    @property
    def embedder(self) -> SentenceEmbedder:
        adapter = self.embed_model
        if not isinstance(adapter, LlamaIndexEmbeddingAdapter):
            raise TypeError("CappedSemanticSplitter needs a LlamaIndexEmbeddingAdapter to count tokens")
        return adapter.embedder

    @property
    def sentence_embedder(self) -> SentenceEmbedder:
        """What embeds the sentence pass (the boundary embedder, else `embedder`)."""
        return self._boundary_embedder or self.embedder

    # ---- LlamaIndex entry point: same fast path, nodes instead of located chunks ----

    def build_semantic_nodes_from_documents(
        self, documents: Sequence[Document], show_progress: bool = False
    ) -> list[BaseNode]:
        nodes: list[BaseNode] = []
        for document in documents:
            spans = self.split_into_chunk_spans(document.text)
            texts = [document.text[start:end].strip() for start, end in spans]
            nodes.extend(build_nodes_from_splits(texts, document, id_func=self.id_func))
        return nodes

    async def abuild_semantic_nodes_from_documents(
        self, documents: Sequence[Document], show_progress: bool = False
    ) -> list[BaseNode]:
        return self.build_semantic_nodes_from_documents(documents, show_progress)

    # ---- our entry point ----

    def chunk_located_texts(
        self,
        segments: Sequence[LocatedText],
        first_chunk_index: int = 0,
        on_embedded: EmbeddingProgress | None = None,
    ) -> list[Chunk]:
        """Chunk consecutive pages/blocks together, recording which of them each chunk spans.

        `on_embedded(done, total)` is called as the sentence units of the window are embedded.
        """
        segment_starts: list[int] = []
        parts: list[str] = []
        position = 0
        for segment in segments:
            segment_starts.append(position)
            parts.append(segment.text)
            position += len(segment.text) + len(_SEGMENT_SEPARATOR)
        window_text = _SEGMENT_SEPARATOR.join(parts)

        spans, vectors = self.split_into_chunk_spans_with_vectors(window_text, on_embedded)
        texts = [window_text[start:end] for start, end in spans]
        token_counts = self.embedder.count_tokens_batch(texts)
        chunks: list[Chunk] = []
        for (start, end), text, token_count, vector in zip(spans, texts, token_counts, vectors, strict=True):
            first = bisect.bisect_right(segment_starts, start) - 1
            last = bisect.bisect_right(segment_starts, end - 1) - 1
            first_segment, last_segment = segments[first], segments[last]
            line_start = line_end = None
            if first_segment.first_line is not None and last_segment.first_line is not None:
                line_start = first_segment.first_line + window_text.count("\n", segment_starts[first], start)
                line_end = last_segment.first_line + window_text.count("\n", segment_starts[last], end - 1)
            chunks.append(
                Chunk(
                    text=text,
                    chunk_index=first_chunk_index + len(chunks),
                    token_count=token_count,
                    page_start=first_segment.page_number,
                    page_end=last_segment.page_number,
                    line_start=line_start,
                    line_end=line_end,
                    embedding=vector,
                )
            )
        return chunks

    def split_into_chunk_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the chunks of `text`, each stripped and within the token cap."""
        return self.split_into_chunk_spans_with_vectors(text)[0]

    def split_into_chunk_spans_with_vectors(
        self, text: str, on_embedded: EmbeddingProgress | None = None
    ) -> tuple[list[tuple[int, int]], list[npt.NDArray[np.float32] | None]]:
        """Chunk spans, and for each the embedding when the sentence pass already computed it.

        A chunk that is exactly one embedding unit (a sentence, or a run of fragments
        merged into one) has the same word pieces as that unit, so its vector is reused
        instead of embedding the text a second time — unless a separate boundary embedder
        computed it, whose vectors are for breakpoints only.
        """
        sentences = self._located_sentences(text)
        if not sentences:
            return [], []
        embeddings = self._embed_units(
            [text[s.start : s.end] for s in sentences], [s.content_tokens for s in sentences], on_embedded
        )
        distances = self._window_distances(embeddings)
        groups = self._semantic_groups(len(sentences), distances)
        budget = self.max_chunk_tokens - _SPECIAL_TOKENS
        capped: list[tuple[int, int]] = []  # sentence index ranges, end exclusive
        for first, last in groups:
            capped.extend(self._cap_group(first, last, sentences, distances, budget))
        merged = self._merge_small_pieces(capped, sentences, budget)
        spans: list[tuple[int, int]] = []
        known: list[npt.NDArray[np.float32] | None] = []
        for first, last in merged:
            span = _strip_span(text, sentences[first].start, sentences[last - 1].end)
            if span[1] > span[0]:
                spans.append(span)
                reusable = last - first == 1 and self._boundary_embedder is None
                known.append(embeddings[first] if reusable else None)
        return self._enforce_cap(text, spans, known)

    # ---- steps ----

    def _embed_units(
        self, texts: list[str], token_counts: list[int], on_embedded: EmbeddingProgress | None
    ) -> npt.NDArray[np.float32]:
        """Embed the whole window's units, shortest first, in slices that report progress.

        Straight to the embedder (no round trip through LlamaIndex's lists of floats).
        Sorting the window once and cutting it into consecutive slices gives the same
        length-homogeneous batches (little padding) as one big call, which is why windows
        are large; the slices only exist so that progress moves during a long window.
        """
        embedder = self.sentence_embedder
        if on_embedded is None or len(texts) <= _UNITS_PER_PROGRESS_STEP:
            vectors = embedder.embed(texts)
            if on_embedded is not None:
                on_embedded(len(texts), len(texts))
            return vectors
        # By word pieces, like the embedder's own batching: each slice is a run of similar lengths.
        order = sorted(range(len(texts)), key=token_counts.__getitem__)
        vectors = np.empty((len(texts), embedder.dimensions), dtype=np.float32)
        for start in range(0, len(order), _UNITS_PER_PROGRESS_STEP):
            indices = order[start : start + _UNITS_PER_PROGRESS_STEP]
            vectors[indices] = embedder.embed([texts[index] for index in indices])
            on_embedded(min(start + _UNITS_PER_PROGRESS_STEP, len(order)), len(order))
        return vectors

    def _located_sentences(self, text: str) -> list[_Sentence]:
        pieces: list[tuple[int, int]] = []
        cursor = 0
        for sentence in self.sentence_splitter(text):
            start = text.find(sentence, cursor)
            if start < 0:  # a splitter that normalizes text; fall back to its order
                start = cursor
            end = start + len(sentence)
            pieces.append((start, end))
            cursor = end
        counts = self.embedder.count_tokens_batch([text[start:end] for start, end in pieces])
        budget = self.max_chunk_tokens - _SPECIAL_TOKENS
        sentences: list[_Sentence] = []
        for (start, end), count in zip(pieces, counts, strict=True):
            content_tokens = count - _SPECIAL_TOKENS
            if content_tokens <= budget:
                if content_tokens > 0:
                    sentences.append(_Sentence(start, end, content_tokens))
                continue
            sentences.extend(self._split_long_sentence(text, start, end, budget))
        return _merge_fragments(sentences, budget)

    def _split_long_sentence(self, text: str, start: int, end: int, budget: int) -> list[_Sentence]:
        """Cut a sentence longer than the window at line breaks, else at spaces, else anywhere."""
        token_spans = self.embedder.token_character_spans(text[start:end])
        pieces: list[_Sentence] = []
        first_token = 0
        while first_token < len(token_spans):
            limit = min(first_token + budget, len(token_spans))
            cut = limit
            if limit < len(token_spans):
                cut = _best_cut(text[start:end], token_spans, first_token, limit, budget)
            piece_start = start + token_spans[first_token][0]
            piece_end = start + token_spans[cut - 1][1]
            pieces.append(_Sentence(piece_start, piece_end, cut - first_token))
            first_token = cut
        return pieces

    def _window_distances(self, embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Cosine distance between each sentence's window and the next one's.

        A window's vector is the normalized mean of its sentences' normalized vectors,
        standing in for the embedding of the concatenated window that the stock parser
        computes (which would embed every sentence 2·buffer_size+1 times).
        """
        count = len(embeddings)
        if count < 2:
            return np.zeros(0, dtype=np.float32)
        cumulative = np.vstack(
            [np.zeros((1, embeddings.shape[1]), dtype=np.float32), np.cumsum(embeddings, axis=0)]
        )
        indices = np.arange(count)
        window_starts = np.maximum(indices - self.buffer_size, 0)
        window_ends = np.minimum(indices + self.buffer_size + 1, count)
        windows = cumulative[window_ends] - cumulative[window_starts]
        windows /= np.maximum(np.linalg.norm(windows, axis=1, keepdims=True), 1e-12)
        similarities = np.einsum("ij,ij->i", windows[:-1], windows[1:])
        return (1.0 - similarities).astype(np.float32)

    def _semantic_groups(self, count: int, distances: npt.NDArray[np.float32]) -> list[tuple[int, int]]:
        """The stock parser's rule: break after every distance above the percentile threshold."""
        if len(distances) == 0:
            return [(0, count)]
        threshold = np.percentile(distances, self.breakpoint_percentile_threshold)
        groups: list[tuple[int, int]] = []
        start = 0
        for index in np.nonzero(distances > threshold)[0]:
            groups.append((start, int(index) + 1))
            start = int(index) + 1
        if start < count:
            groups.append((start, count))
        return groups

    def _cap_group(
        self,
        first: int,
        last: int,
        sentences: Sequence[_Sentence],
        distances: npt.NDArray[np.float32],
        budget: int,
    ) -> list[tuple[int, int]]:
        # Iterative on an explicit stack: a group of thousands of sentences must not recurse deeply.
        pending = [(first, last)]
        result: list[tuple[int, int]] = []
        while pending:
            start, end = pending.pop()
            tokens = [sentences[i].content_tokens for i in range(start, end)]
            total = sum(tokens)
            if total <= budget or end - start == 1:
                result.append((start, end))
                continue
            left_totals = np.cumsum(tokens[:-1])
            right_totals = total - left_totals
            minimum_side = min(_MIN_SPLIT_SIDE_TOKENS, total // 4)
            boundary_distances = distances[start : end - 1].astype(np.float64)
            allowed = (left_totals >= minimum_side) & (right_totals >= minimum_side)
            if not allowed.any():
                allowed[:] = True
            scores = np.where(allowed, boundary_distances, -np.inf)
            split_after = start + int(np.argmax(scores)) + 1
            # LIFO: push the right half first so pieces come out in document order.
            pending.append((split_after, end))
            pending.append((start, split_after))
        return result

    def _merge_small_pieces(
        self, pieces: list[tuple[int, int]], sentences: Sequence[_Sentence], budget: int
    ) -> list[tuple[int, int]]:
        def size(piece: tuple[int, int]) -> int:
            return sum(sentences[i].content_tokens for i in range(piece[0], piece[1]))

        merged: list[tuple[int, int]] = []
        for piece in pieces:
            if merged:
                previous = merged[-1]
                if (size(previous) < MIN_CHUNK_TOKENS or size(piece) < MIN_CHUNK_TOKENS) and size(
                    previous
                ) + size(piece) <= budget:
                    merged[-1] = (previous[0], piece[1])
                    continue
            merged.append(piece)
        return merged

    def _enforce_cap(
        self, text: str, spans: list[tuple[int, int]], known: list[npt.NDArray[np.float32] | None]
    ) -> tuple[list[tuple[int, int]], list[npt.NDArray[np.float32] | None]]:
        """Re-split the rare chunk whose joint tokenization exceeds the sum of its sentences'."""
        counts = self.embedder.count_tokens_batch([text[start:end] for start, end in spans])
        budget = self.max_chunk_tokens - _SPECIAL_TOKENS
        result: list[tuple[int, int]] = []
        vectors: list[npt.NDArray[np.float32] | None] = []
        for (start, end), count, vector in zip(spans, counts, known, strict=True):
            if count <= self.max_chunk_tokens:
                result.append((start, end))
                vectors.append(vector)
                continue
            for piece in self._split_long_sentence(text, start, end, budget):
                result.append(_strip_span(text, piece.start, piece.end))
                vectors.append(None)
        return result, vectors


def _merge_fragments(sentences: list[_Sentence], budget: int) -> list[_Sentence]:
    """Join runs of very short "sentences" (code lines, list items, headings) into one unit.

    Each unit costs an embedding call plus two special tokens, and a three-token
    fragment has no meaning to compare anyway; in R-intro.pdf this cuts the units to
    embed by more than half without changing where topics change.
    """
    merged: list[_Sentence] = []
    for sentence in sentences:
        if merged:
            previous = merged[-1]
            combined = previous.content_tokens + sentence.content_tokens
            if previous.content_tokens < MIN_SENTENCE_TOKENS and combined <= budget:
                merged[-1] = _Sentence(previous.start, sentence.end, combined)
                continue
        merged.append(sentence)
    return merged


def _best_cut(text: str, token_spans: Sequence[tuple[int, int]], first: int, limit: int, budget: int) -> int:
    """Index of the first token of the next piece: prefer a line break, then a space."""
    earliest = first + max(1, budget // 4)
    for candidate in range(limit, earliest, -1):
        if "\n" in text[token_spans[candidate - 1][1] : token_spans[candidate][0]]:
            return candidate
    for candidate in range(limit, max(earliest, limit - 32), -1):
        if token_spans[candidate - 1][1] < token_spans[candidate][0]:
            return candidate
    return limit


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def make_chunker(embedder: SentenceEmbedder, **options: Any) -> CappedSemanticSplitter:
    return CappedSemanticSplitter.for_embedder(embedder, **options)
