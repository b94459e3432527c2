"""gunzip: every member, a limit on the inflated size, corrupt streams refused."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.registries.gzipped import TooLarge, gunzip, inflated_size, is_gzip


@given(st.binary(max_size=5000), st.binary(max_size=500))
def test_round_trip_of_one_or_two_members(first: bytes, second: bytes) -> None:
    assert gunzip(gzip.compress(first), 10_000) == first
    assert gunzip(gzip.compress(first) + gzip.compress(second), 10_000) == first + second
    assert inflated_size(gzip.compress(first)) == len(first)


def test_the_limit_is_on_the_inflated_size() -> None:
    packed = gzip.compress(b"x" * 10_001)
    assert len(packed) < 100
    with pytest.raises(TooLarge):
        gunzip(packed, 10_000)
    assert gunzip(packed, 10_001) == b"x" * 10_001


def test_a_truncated_stream_is_an_error() -> None:
    with pytest.raises(zlib.error):
        gunzip(gzip.compress(b"hello world" * 100)[:-10], 10_000)


def test_gzip_is_told_from_zlib() -> None:
    assert is_gzip(gzip.compress(b"a"))
    assert not is_gzip(zlib.compress(b"a"))
