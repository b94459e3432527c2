"""Custody: keep track of who holds the keys to every dependency."""

__version__ = "0.1.0"
