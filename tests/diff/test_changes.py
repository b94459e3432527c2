"""Change computation: which releases a lockfile change adds, removes, upgrades, downgrades."""

from __future__ import annotations

from custody.diff import Change, ChangeKind, compare_versions, compute_changes
from custody.model import Ecosystem, LockedDependency

NPM, PYPI = Ecosystem.NPM, Ecosystem.PYPI


def dep(name: str, version: str, eco: Ecosystem = NPM) -> LockedDependency:
    return LockedDependency(eco, name, version, direct=True, paths=((name,),))


def kinds(changes: list[Change]) -> dict[str, tuple[str, str | None, str | None]]:
    return {
        f"{c.ecosystem.value}:{c.name}": (c.kind.value, c.old_version, c.new_version)
        for c in changes
    }


def test_added_removed_upgraded_downgraded_unchanged() -> None:
    old = [dep("a", "1.0.0"), dep("b", "2.0.0"), dep("c", "1.2.0"), dep("d", "3.0.0")]
    new = [dep("a", "1.0.1"), dep("c", "1.1.9"), dep("d", "3.0.0"), dep("e", "0.1.0")]
    assert kinds(compute_changes(old, new)) == {
        "npm:a": ("upgraded", "1.0.0", "1.0.1"),
        "npm:b": ("removed", "2.0.0", None),
        "npm:c": ("downgraded", "1.2.0", "1.1.9"),
        "npm:d": ("unchanged", "3.0.0", "3.0.0"),
        "npm:e": ("added", None, "0.1.0"),
    }


def test_versions_compare_as_versions_not_text() -> None:
    changes = compute_changes([dep("a", "1.9.0")], [dep("a", "1.10.0")])
    assert changes[0].kind is ChangeKind.UPGRADED
    pre = compute_changes([dep("a", "2.0.0")], [dep("a", "2.0.0-rc.1")])
    assert pre[0].kind is ChangeKind.DOWNGRADED
    py = compute_changes([dep("x", "1.0rc1", PYPI)], [dep("x", "1.0", PYPI)])
    assert py[0].kind is ChangeKind.UPGRADED
    assert compare_versions(PYPI, "1.0.post1", "1.0") == 1
    assert compare_versions(NPM, "not-a-version", "1.0.0") == 1  # unparseable sorts last


def test_scoped_npm_names_are_their_own_packages() -> None:
    old = [dep("@scope/kit", "1.0.0"), dep("kit", "1.0.0")]
    new = [dep("@scope/kit", "1.1.0"), dep("kit", "1.0.0"), dep("@other/kit", "1.0.0")]
    assert kinds(compute_changes(old, new)) == {
        "npm:@scope/kit": ("upgraded", "1.0.0", "1.1.0"),
        "npm:kit": ("unchanged", "1.0.0", "1.0.0"),
        "npm:@other/kit": ("added", None, "1.0.0"),
    }
    [scoped] = [c for c in compute_changes(old, new) if c.name == "@scope/kit"]
    assert scoped.key == "npm:@scope/kit@1.1.0"


def test_pypi_versions_compare_by_pep_440() -> None:
    """Readers normalise names (PEP 503); ``1.0`` and ``1.0.0`` are the same release."""
    old = [dep("typing-extensions", "4.0", PYPI), dep("requests", "2.31.0", PYPI)]
    new = [dep("typing-extensions", "4.0.0", PYPI), dep("requests", "2.32.0", PYPI)]
    assert kinds(compute_changes(old, new)) == {
        "pypi:requests": ("upgraded", "2.31.0", "2.32.0"),
        "pypi:typing-extensions": ("unchanged", "4.0", "4.0.0"),
    }


def test_same_name_in_both_ecosystems_is_two_packages() -> None:
    changes = compute_changes([dep("six", "1.0.0", NPM)], [dep("six", "1.16.0", PYPI)])
    assert kinds(changes) == {
        "npm:six": ("removed", "1.0.0", None),
        "pypi:six": ("added", None, "1.16.0"),
    }


def test_several_locked_versions_pair_with_the_one_they_replace() -> None:
    """Nested npm copies: each new version pairs with the highest old version below it."""
    old = [dep("ms", "1.0.0"), dep("ms", "2.0.0"), dep("ms", "2.1.0")]
    new = [dep("ms", "1.0.0"), dep("ms", "2.1.3"), dep("ms", "3.0.0")]
    changes = sorted(compute_changes(old, new), key=lambda c: (c.kind.value, c.new_version or ""))
    assert [(c.kind.value, c.old_version, c.new_version) for c in changes] == [
        ("removed", "2.0.0", None),
        ("unchanged", "1.0.0", "1.0.0"),
        ("upgraded", "2.1.0", "2.1.3"),
        ("upgraded", "2.1.0", "3.0.0"),
    ]


def test_an_extra_copy_is_judged_against_the_kept_one() -> None:
    changes = compute_changes([dep("ms", "2.0.0")], [dep("ms", "2.0.0"), dep("ms", "1.0.0")])
    assert sorted((c.kind.value, c.old_version, c.new_version) for c in changes) == [
        ("downgraded", "2.0.0", "1.0.0"),
        ("unchanged", "2.0.0", "2.0.0"),
    ]


def test_duplicates_across_lockfiles_count_once() -> None:
    changes = compute_changes([dep("a", "1.0.0")] * 2, [dep("a", "1.0.1"), dep("a", "1.0.1")])
    assert [(c.kind.value, c.new_version) for c in changes] == [("upgraded", "1.0.1")]
