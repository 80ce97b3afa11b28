"""Dropping the chunk partitions of deleted models (migration 0004).

A model's partition of `document_chunks` is created with the model (a trigger on
`models`). Deleting the model cascades to its chunks in the same transaction, which
leaves the partition empty; removing the partition itself is done here, afterwards:
`ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY` needs no lock that blocks other
models' retrieval or ingestion (a plain DETACH or DROP would take ACCESS EXCLUSIVE on
the whole table), but it cannot run inside a transaction block, so it cannot be part
of the delete. A partition whose model is gone is found from the catalog, so a crash
between the delete and this sweep is repaired by the next sweep (run at every
start-up and after every model delete by the storage sweeper).
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

PARENT_TABLE = "document_chunks"
_PARTITION_NAME = re.compile(r"^document_chunks_[0-9a-f]{32}$")

# Partitions (attached, or left half-detached by an interrupted DETACH CONCURRENTLY) and
# stray tables named like partitions (detached, not yet dropped) with no model.
_ORPHANS = text(
    """
    SELECT c.relname, i.inhparent IS NOT NULL AS attached, coalesce(i.inhdetachpending, false)
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
    LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = CAST(:parent AS regclass)
    WHERE c.relkind = 'r'
      AND c.relname ~ '^document_chunks_[0-9a-f]{32}$'
      AND NOT EXISTS (
          SELECT 1 FROM models m WHERE replace(CAST(m.id AS text), '-', '') = substr(c.relname, 17)
      )
    ORDER BY c.relname
    """
)


def partition_name(model_id: object) -> str:
    """The partition holding a model's chunks."""
    return f"{PARENT_TABLE}_{str(model_id).replace('-', '')}"


async def drop_orphan_chunk_partitions(engine: AsyncEngine) -> int:
    """Detach and drop every chunk partition whose model no longer exists; returns how many."""
    dropped = 0
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        rows = (await autocommit.execute(_ORPHANS, {"parent": PARENT_TABLE})).all()
        for name, attached, detach_pending in rows:
            if not _PARTITION_NAME.match(name):  # never interpolate anything else
                continue
            try:
                if detach_pending:
                    await autocommit.execute(
                        text(f"ALTER TABLE {PARENT_TABLE} DETACH PARTITION {name} FINALIZE")
                    )
                elif attached:
                    await autocommit.execute(
                        text(f"ALTER TABLE {PARENT_TABLE} DETACH PARTITION {name} CONCURRENTLY")
                    )
                await autocommit.execute(text(f"DROP TABLE IF EXISTS {name}"))
            except Exception as error:  # another process sweeping the same one, a lock timeout
                logger.warning("could not drop chunk partition %s: %s (will retry)", name, error)
                continue
            dropped += 1
    return dropped
