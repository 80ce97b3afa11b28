"""How long a document's ingestion still needs, from this server's measured speed.

Two measurements, blended by how far the run has got:

- the *history*: seconds per page (PDF, PowerPoint, images) or per byte (everything else)
  of this install's latest READY documents of the same kind — the median of up to 20,
  read from their rows (`processing_started_at` → `processed_at`,
  `gql_server/documents/repository.py` `recent_seconds_per_unit`) when the run starts;
- the document's *own pace*: elapsed time over the share of its work done, where the share
  is weighted by what each pass costs (`workers/pipeline/process.py` `WorkMeter`), so that it
  grows at a steady pace.

Expected total = (1 − f) × history + f × own, with f the share done: at the start the
history speaks (the document's own pace says little after 2 % of it), at the end its own
pace. Without history (the first document of its kind on this install) the own pace alone,
and no ETA before 2 % of the work.

Why the history lives in the document rows and not in process memory: it is already there
(every READY row carries its start, end, pages and bytes), it survives restarts, and every
API process and `ragql worker` of an install reads the same figures; it costs one indexed
query per run. What it measures is this install's real throughput, contention included
(documents ingested side by side took longer each, and so will the next ones while the
server is as busy). With workers on several machines the history mixes their speeds; the
own pace corrects that as the run goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gql_server.db.models import DocumentKind

# Kinds whose work is counted in pages (their page count is known as soon as they open).
PAGED_KINDS = frozenset({DocumentKind.PDF, DocumentKind.PPTX, DocumentKind.IMAGE})
# Below this share of the work, the document's own pace is not told without history.
MIN_OWN_FRACTION = 0.02


def counts_pages(kind: DocumentKind) -> bool:
    return kind in PAGED_KINDS


@dataclass
class IngestionEstimate:
    """The ETA of one run. `seconds_per_unit` is the history (None: none yet)."""

    seconds_per_unit: float | None
    size_bytes: int
    per_page: bool

    def expected_total(self, page_count: int | None) -> float | None:
        """Seconds the whole run should take by the history alone."""
        if self.seconds_per_unit is None:
            return None
        units = page_count if self.per_page else self.size_bytes
        if not units:
            return None
        return self.seconds_per_unit * units

    def remaining(
        self, elapsed: float, fraction: float, page_count: int | None, start_up: float = 0.0
    ) -> float | None:
        """Seconds left after `elapsed` seconds with `fraction` (0 to 1) of the work done.
        `start_up`: the seconds before the first unit of work (the parser child starting, the
        file opening) — paid once, so the own pace extrapolates only the time after it (on
        R-intro.pdf without history, extrapolating it too said 27.6 s left at 12 % with 12.7 s
        to go)."""
        fraction = max(0.0, min(1.0, fraction))
        start_up = max(0.0, min(start_up, elapsed))
        prior = self.expected_total(page_count)
        own = start_up + (elapsed - start_up) / fraction if fraction >= MIN_OWN_FRACTION else None
        if prior is None and own is None:
            return None
        if prior is None:
            total = own
        elif own is None:
            total = prior
        else:
            total = (1 - fraction) * prior + fraction * own
        assert total is not None
        return max(0.0, total - elapsed)
