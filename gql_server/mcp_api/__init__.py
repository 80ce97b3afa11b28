"""The MCP server at /mcp (streamable HTTP, the official `mcp` SDK): list_models, search, ask."""
