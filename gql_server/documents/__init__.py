"""Documents of a model: streamed uploads, listing, deletion, re-indexing, progress, downloads."""
