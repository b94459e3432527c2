"""The file edits of rollback on real manifests and lockfiles (tests/fixtures/lockfiles)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tomlkit

from custody.errors import InputError
from custody.lockfiles import read_lockfile
from custody.rollback_edits import npm_override, requirements_pin, uv_override

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lockfiles"


def test_npm_override_pins_direct_and_transitive() -> None:
    original = (FIXTURES / "npm-v3" / "package.json").read_text()
    direct = json.loads(npm_override(original, "event-stream", "3.3.4", path="package.json"))
    assert direct["overrides"] == {"event-stream": "3.3.4"}
    assert direct["dependencies"]["event-stream"] == "3.3.4"  # npm: EOVERRIDE otherwise
    nested = json.loads(npm_override(original, "through", "2.3.7", path="package.json"))
    assert nested["overrides"] == {"through": "2.3.7"}
    assert "through" not in nested.get("dependencies", {})
    # everything else is kept, in order, with the file's indentation and final newline
    before = json.loads(original)
    assert [k for k in nested if k != "overrides"] == list(before)
    assert npm_override(original, "through", "2.3.7", path="p").endswith("}\n")


def test_npm_override_keeps_existing_overrides_and_refuses_garbage() -> None:
    text = '{\n    "name": "x",\n    "overrides": {"foo": "1.0.0"}\n}\n'
    out = npm_override(text, "bar", "2.0.0", path="package.json")
    assert json.loads(out)["overrides"] == {"foo": "1.0.0", "bar": "2.0.0"}
    assert '\n    "name"' in out  # four-space indentation kept
    with pytest.raises(InputError, match=r"package\.json:1: invalid JSON"):
        npm_override("{nope", "bar", "1", path="package.json")
    with pytest.raises(InputError, match="'overrides' is not an object"):
        npm_override('{"overrides": []}', "bar", "1", path="package.json")


def test_requirements_pin_with_hashes(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    shutil.copy(FIXTURES / "requirements" / "requirements.txt", path)
    before = {d.name: d for d in read_lockfile(path)}
    old = before["certifi"].version
    text = path.read_text()
    new = requirements_pin(text, "Certifi", "2024.8.30", ["ab" * 32, "cd" * 32], path=str(path))
    path.write_text(new)
    after = {d.name: d for d in read_lockfile(path)}
    assert after["certifi"].version == "2024.8.30" != old
    assert (
        "certifi==2024.8.30 \\\n    --hash=sha256:"
        + "ab" * 32
        + " \\\n    --hash=sha256:"
        + "cd" * 32
        + "\n    # via\n"
        in new
    )
    # every other line is untouched
    assert {n: d.version for n, d in after.items() if n != "certifi"} == {
        n: d.version for n, d in before.items() if n != "certifi"
    }
    assert len(new.splitlines()) == len(text.splitlines())


def test_requirements_pin_keeps_markers_and_extras() -> None:
    text = "requests[socks]==2.32.0 ; python_version >= '3.8'\nidna==3.7\n"
    out = requirements_pin(text, "requests", "2.31.0", [], path="r.txt")
    assert out == "requests[socks]==2.31.0 ; python_version >= '3.8'\nidna==3.7\n"
    with pytest.raises(InputError, match="no pinned requirement for urllib3"):
        requirements_pin(text, "urllib3", "1.0", [], path="r.txt")
    hashed = "idna==3.7 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    with pytest.raises(InputError, match="checks hashes"):
        requirements_pin(hashed, "idna", "3.6", [], path="r.txt")


def test_uv_override_keeps_the_file_and_replaces_an_earlier_pin() -> None:
    original = (FIXTURES / "uv" / "pyproject.toml").read_text()
    once = uv_override(original, "urllib3", "2.2.1", path="pyproject.toml")
    assert once.startswith(original.rstrip("\n"))  # appended, nothing rewritten
    twice = uv_override(once, "URLLIB3", "2.2.0", path="pyproject.toml")
    doc = tomlkit.parse(twice)
    assert doc["tool"]["uv"]["override-dependencies"] == ["URLLIB3==2.2.0"]  # type: ignore[index]
    with pytest.raises(InputError, match="invalid TOML"):
        uv_override("[tool\n", "x", "1", path="pyproject.toml")
