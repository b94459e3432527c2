"""A tiny read-only npm registry on loopback that serves the demo's packuments.

It exists so ``custody demo`` runs on a fresh machine with no network and nothing else
installed. The tests use real registries (Verdaccio, devpi); this one only replays a story."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import orjson


@contextmanager
def serve(documents: Mapping[str, Any], files: Mapping[str, bytes]) -> Iterator[str]:
    """Serve ``documents`` (package name -> packument) at ``http://127.0.0.1:PORT/NAME`` and
    ``files`` (tarballs) at their paths; yields the base URL. ``{REGISTRY}`` in a document is
    replaced by that URL."""
    bodies: dict[str, bytes] = dict(files)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(unquote(self.path.lstrip("/")))
            if body is None:
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error":"not found"}')
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    for name, doc in documents.items():
        bodies[name] = orjson.dumps(doc).replace(b"{REGISTRY}", base.rstrip("/").encode())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
