"""``BadDocument``, in a module of its own: the parser worker (``parse_worker.py``) raises it
and must start without importing the HTTP client."""

from __future__ import annotations


class BadDocument(ValueError):
    """A response body the caller cannot decode (garbage JSON, wrong shape): retried."""
