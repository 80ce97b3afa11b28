"""Answer generators: Ollama, OpenAI-compatible servers, Anthropic and the built-in extractive answerer.

Import from the submodules (`gql_server.llm.base`, `gql_server.llm.registry`); this package
re-exports nothing so that importing the shared types does not load both vendor SDKs.
"""
