"""Document-processing pipeline: sniff → parse → chunk → embed, as a pure library.

Nothing in this package touches the database or the network; the ingestion task
stores what `process_document` hands back.
"""
