"""Write a tiny llama-architecture GGUF model with random weights, for llama.cpp protocol checks.

    python bench/tiny_gguf.py OUT.gguf [--words FILE]

No registry (PyPI, npm, Debian) ships GGUF weights and this machine has no model hub, so the
real-server check (bench/llama_cpp_check.py) runs llama.cpp on a model made here: 2 layers,
64-dimensional, a SentencePiece-style vocabulary of the 256 byte tokens plus the words of
--words (so prompts stay a few thousand tokens), seeded random weights. It answers with
nonsense, which is what the check needs: a real llama.cpp server, its real OpenAI-compatible
protocol (streaming, `finish_reason`, `usage`), and a model that writes no `[n]` markers.
Its end-of-sequence token's output row is zero, so greedy decoding never ends a reply early:
every reply runs into the token limit (`finish_reason: "length"`).

Needs the `gguf` package (llama.cpp's own writer, on PyPI) and numpy; run it with the Python
that has llama-cpp-python installed.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import gguf
import numpy as np

EMBEDDING = 64
LAYERS = 2
HEADS = 4
FEED_FORWARD = 128
CONTEXT = 32768


def vocabulary(words_file: Path | None) -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces: Counter[str] = Counter()
    if words_file is not None:
        pieces.update(re.findall(r"\w+|[^\w\s]", words_file.read_text(errors="replace")))
    common = "the of and to in is that for it as with on by this be are from or at an which".split()
    pieces.update({word: 1 for word in common})
    chosen = [piece for piece, _ in pieces.most_common(6000)]
    normal = ["▁"] + [chr(code) for code in range(33, 127)]
    normal += ["▁" + piece for piece in chosen] + [piece for piece in chosen if len(piece) > 1]
    seen = set(tokens)
    for piece in normal:
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(gguf.TokenType.NORMAL)
    # SentencePiece scores: longer pieces win, so words tokenise as one piece.
    scores = [0.0] * 259 + [float(len(token)) for token in tokens[259:]]
    return tokens, scores, [int(kind) for kind in types]


def write(path: Path, words_file: Path | None, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary(words_file)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("ragql-tiny-random")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBEDDING)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_rope_dimension_count(EMBEDDING // HEADS)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    vocab = len(tokens)
    embedding = weights(vocab, EMBEDDING)
    output = weights(vocab, EMBEDDING)
    output[2] = 0.0  # end of sequence never wins a greedy choice
    writer.add_tensor("token_embd.weight", embedding)
    writer.add_tensor("output_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(LAYERS):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(prefix + name + ".weight", weights(EMBEDDING, EMBEDDING))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(prefix + "ffn_up.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(prefix + "ffn_down.weight", weights(EMBEDDING, FEED_FORWARD))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--words", help="a text file whose words become vocabulary pieces")
    args = parser.parse_args()
    write(Path(args.output), Path(args.words) if args.words else None)


if __name__ == "__main__":
    main()
