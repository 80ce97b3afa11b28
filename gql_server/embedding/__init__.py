"""The sentence-embedding model, shared by the API (query embeddings, rag/retrieval.py) and
the workers (chunk embeddings, workers/pipeline). It lives here, below both, so neither
imports the other's upper layers: it needs nothing but numpy, the tokenizer and the model
runtime, and its knobs arrive as arguments (from Settings, by the caller)."""
