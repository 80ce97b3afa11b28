"""Failures a user can act on; every message is written to be shown to them as is."""


class UnsupportedDocument(Exception):
    """The upload is not a kind of document the pipeline can read (decided from its content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DocumentParseError(Exception):
    """The document has a supported kind but cannot be read (encrypted, corrupt, truncated...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
