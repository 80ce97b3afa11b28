"""Chat: sessions, messages, background answer generation and its replayable event stream."""
