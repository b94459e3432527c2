"""What a check costs before it does anything: the modules only some runs need are imported
when those runs need them (a warm check answered from the cache sends no request, verifies no
certificate, edits no trust file, compares no source tree and uses no PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys

LAZY = (
    "httpx",  # only when a request is sent
    "cryptography",  # only when a certificate is read
    "sigstore",
    "tomlkit",  # only when the trust file is edited
    "pathspec",  # only when an artifact is compared with its source
    "sqlalchemy.dialects.postgresql",  # only on PostgreSQL
    "nodesemver",  # only for a version that is not plain MAJOR.MINOR.PATCH, or a range
    "custody.registries.pypi",  # only when PyPI packages are locked
    "custody.fingerprint.check",  # only with [policy] fingerprints = true
    "rich",  # only for a text report, a progress bar or a message on stderr
)


def test_the_check_path_imports_none_of_the_lazy_modules() -> None:
    probe = (
        "import sys, custody.cli, custody.engine; "
        f"print(','.join(m for m in {LAZY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == ""


def test_machine_readable_formats_do_not_import_rich() -> None:
    probe = (
        "import sys; from custody.formats import FORMATS\n"
        "renders = [FORMATS[f] for f in ('json', 'sarif', 'markdown')]\n"
        "print('rich' in sys.modules, sorted(FORMATS))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split(maxsplit=1) == ["False", "['json', 'markdown', 'sarif', 'text']\n"]


def test_running_the_package_module_needs_the_main_guard() -> None:
    """Parser workers and any other spawned Python import ``custody.__main__`` only by name;
    importing it must not run the CLI."""
    done = subprocess.run(
        [sys.executable, "-c", "import custody.__main__"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == "" and done.stderr == ""


def test_output_is_delivered_before_the_process_ends_without_teardown() -> None:
    """``main`` ends with ``os._exit``: what was written to a pipe must still arrive, and the
    exit code must still be the command's."""
    probe = (
        "import sys, custody.cli as c\n"
        "sys.stdout.write('x' * 200_000)\n"  # more than any pipe buffer holds
        "sys.argv = ['custody', '--version']\n"
        "c.main()\n"
        "print('not reached')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("x" * 200_000)
    assert done.stdout[200_000:].startswith("custody ")
    assert "not reached" not in done.stdout
