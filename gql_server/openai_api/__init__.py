"""The OpenAI-compatible API under /v1: list models, chat completions (streamed or not)
over the same retrieval, prompt and provider as sendMessage."""
