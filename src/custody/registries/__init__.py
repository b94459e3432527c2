"""Registry readers: the npm and PyPI readers, the shared HTTP client, and ``facade.py``, which
fetches every package history a run needs before any signal.

This file imports nothing: the parser worker (``parse_worker.py``) imports modules of this
package and must start without the HTTP client and asyncio (see ``facade.py`` for the API)."""
