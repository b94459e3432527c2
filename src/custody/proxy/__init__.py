"""The registry firewall (``custody proxy``): an npm registry and a Python package index in
front of the real ones, serving only the releases the trust file and the judge allow.

Reference: docs/proxy.md. Entry points: ``create_app(ProxyConfig(...))`` (ASGI) and the
``custody proxy`` command. Imported lazily, so the rest of the CLI never pays for the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from custody.proxy.app import create_app
    from custody.proxy.config import ProxyConfig

__all__ = ["ProxyConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from custody.proxy.app import create_app

        return create_app
    if name == "ProxyConfig":
        from custody.proxy.config import ProxyConfig

        return ProxyConfig
    raise AttributeError(name)
