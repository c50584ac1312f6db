"""RSS/Atom feeds into seed files: fetch (network), parse (pure), write (the seeds directory).

The only part of `retrieval` that touches the network; the rest reads seed files.
"""

from retrieval.feeds.ingest import FeedReport, format_report, ingest_feeds

__all__ = ["FeedReport", "format_report", "ingest_feeds"]
