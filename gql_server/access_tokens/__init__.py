"""Personal access tokens: long-lived, scoped API keys of one user."""
