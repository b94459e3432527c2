"""The registry firewall (``custody proxy``): an npm registry and a Python package index in
front of the real ones, serving only the releases the trust file and the judge allow.

Reference: docs/proxy.md. Entry points: ``create_app(ProxyConfig(...))`` (ASGI) and the
``custody proxy`` command."""

from custody.proxy.app import create_app
from custody.proxy.config import ProxyConfig

__all__ = ["ProxyConfig", "create_app"]
