"""Package keys and custodian patterns as written in the trust file.

Everything here raises ``ValueError`` with a message fit for a person; the loader turns it into a
``TrustFileError`` that names the file and line."""

from __future__ import annotations

import functools
import re

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from custody.model import Ecosystem

ECOSYSTEMS: tuple[str, ...] = tuple(e.value for e in Ecosystem)

#: Namespaces of accounts on a registry: ``NS:user/NAME``, ``NS:org/NAME`` (``NS:group/:NAME``
#: for a devpi group); npm also has ``npm:trusted-publisher/ID``, a release published through
#: npm trusted publishing (OIDC) by the CI system ``ID`` (``github``, ``gitlab``).
ACCOUNT_NAMESPACES: tuple[str, ...] = ("npm", "pypi")
#: Namespaces of source repositories (from signed provenance): ``NS:OWNER/REPO[:WORKFLOW]``.
REPOSITORY_NAMESPACES: tuple[str, ...] = ("github", "gitlab")
KNOWN_NAMESPACES: tuple[str, ...] = ACCOUNT_NAMESPACES + REPOSITORY_NAMESPACES

#: The kind of an npm custodian that is a trusted publish rather than an account:
#: ``npm:trusted-publisher/ID``, ``ID`` being ``_npmUser.trustedPublisher.id``.
TRUSTED_PUBLISHER = "trusted-publisher"
TRUSTED_PUBLISHER_PREFIX = f"npm:{TRUSTED_PUBLISHER}/"

_FORMS = (
    "npm:user/NAME, npm:trusted-publisher/ID, pypi:user/NAME, pypi:org/NAME or github:OWNER/REPO"
)

_NPM_NAME = re.compile(r"(?:@[A-Za-z0-9][A-Za-z0-9._~-]*/)?[A-Za-z0-9._~-]+")
_PYPI_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_ACCOUNT = re.compile(r":?[^\s/:*?\[\]]+")  # devpi groups are written ":name"
_CI_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # npm:trusted-publisher/ID
_OWNER = re.compile(r"[A-Za-z0-9._-]+")
_REPO = re.compile(r"[A-Za-z0-9._*-]+")
_GITHUB_WORKFLOW = re.compile(r"\.github/workflows/[A-Za-z0-9._*-]+")
_PATH = re.compile(r"[A-Za-z0-9._*/-]+")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_!-]*")
_TIER_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SPACE = re.compile(r"\s")  # exactly the characters str.isspace() accepts
_NOT_GLOB = re.compile(r"[?\[\]]")  # fnmatch wildcards the trust file does not allow


def normalize_package_key(key: str) -> str:
    """Check ``ECO:NAME`` and return its canonical spelling.

    The ecosystem is lower-cased; PyPI names are PEP 503 normalised (``pypi:Django`` ->
    ``pypi:django``); npm names are kept as written (old npm packages have upper-case names)."""
    eco, sep, name = key.partition(":")
    if not sep:
        raise ValueError(
            f"package key {key!r} has no ecosystem; write it as ECO:NAME, e.g. npm:event-stream"
        )
    eco = eco.lower()
    if eco not in ECOSYSTEMS:
        raise ValueError(
            f"unknown ecosystem {eco!r} in package key {key!r}; expected one of "
            + ", ".join(ECOSYSTEMS)
        )
    if not name:
        raise ValueError(f"package key {key!r} has no package name")
    if name.rfind("@") > 0 or "==" in name:
        raise ValueError(
            f"package key {key!r} names a version; a key is ECO:NAME, versions go in approvals"
        )
    if eco == "npm":
        if not _NPM_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid npm package name (in {key!r})")
        return f"npm:{name}"
    if not _PYPI_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid PyPI project name (in {key!r})")
    return f"pypi:{canonicalize_name(name)}"


@functools.lru_cache(maxsize=8192)
def lookup_key(key: str) -> str:
    """Like :func:`normalize_package_key`, for look-ups: a malformed key is returned as given
    (it simply matches nothing)."""
    try:
        return normalize_package_key(key)
    except ValueError:
        return key


def normalize_version(package_key: str, version: str) -> str:
    """The spelling two versions are compared in: PEP 440 canonical form for PyPI (``1.0`` and
    ``1.0.0`` are the same release there), exact for npm."""
    if package_key.startswith("pypi:"):
        try:
            return canonicalize_version(version)
        except Exception:  # an invalid version compares as written
            return version
    return version


def check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise ValueError(
            f"{version!r} is not a version: an approval names one exact version, e.g. 4.0.1"
        )
    return version


_SEMVER = re.compile(
    r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


def check_release_version(package_key: str, version: str) -> str:
    """Stricter than :func:`check_version`, for a version a person is about to approve: one
    that a release can have. npm: a full SemVer version as npm stores it
    (``MAJOR.MINOR.PATCH[-PRE][+BUILD]``; not ``1.x``, ``latest`` or ``v1.0.1``); PyPI: a
    valid PEP 440 version. Raises ``ValueError``."""
    check_version(version)
    if package_key.startswith("npm:"):
        if not _SEMVER.fullmatch(version):
            raise ValueError(
                f"{version!r} is not an npm release version: approve one exact version as npm "
                "lists it, MAJOR.MINOR.PATCH (e.g. 4.0.1 or 2.0.0-beta.1), not a range, a tag "
                "or a 'v' prefix"
            )
        return version
    try:
        Version(version)
    except InvalidVersion:
        raise ValueError(
            f"{version!r} is not a PEP 440 version: approve one exact release, e.g. 2.31.0"
        ) from None
    return version


def check_tier_name(name: str) -> str:
    if not _TIER_NAME.fullmatch(name):
        raise ValueError(f"tier name {name!r} may only use letters, digits, '-' and '_'")
    return name


def split_workflow(custodian: str) -> tuple[str, str | None]:
    """``github:o/r:.github/workflows/release.yml`` -> (``github:o/r``, the workflow path)."""
    namespace, sep, rest = custodian.partition(":")
    if not sep or namespace.lower() not in REPOSITORY_NAMESPACES:
        return custodian, None
    identity, sep, workflow = rest.partition(":")
    if not sep:
        return custodian, None
    return f"{namespace}:{identity}", workflow


def normalize_workflow(path: str) -> str:
    """A workflow path as it is compared: relative to the repository root, without a ``@ref``."""
    path = path.split("@", 1)[0]
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def has_glob(text: str) -> bool:
    return "*" in text


def is_trusted_publisher(custodian: str) -> bool:
    """Is ``custodian`` an ``npm:trusted-publisher/ID`` id (any case)?"""
    return custodian[: len(TRUSTED_PUBLISHER_PREFIX)].lower() == TRUSTED_PUBLISHER_PREFIX


def check_custodian(custodian: str) -> str:
    """Check a custodian id or pattern as written in the trust file; return it unchanged.

    Forms: ``npm:user/NAME``, ``npm:org/NAME``, ``npm:trusted-publisher/ID``, ``pypi:user/NAME``,
    ``pypi:org/NAME``, ``github:OWNER/REPO``, ``github:OWNER/REPO:.github/workflows/FILE``,
    ``gitlab:GROUP/…/REPO``, ``gitlab:GROUP/…/REPO:PATH``. ``*`` is allowed only in the
    repository name and the workflow path: an account name or repository owner is registered by
    whoever asks first, so a pattern there would trust strangers."""
    if not custodian or _SPACE.search(custodian):
        raise ValueError(f"custodian {custodian!r} is empty or contains white space")
    if _NOT_GLOB.search(custodian):
        raise ValueError(f"custodian {custodian!r}: the only wildcard allowed is '*'")
    namespace, sep, rest = custodian.partition(":")
    if not sep or not namespace or not rest:
        raise ValueError(f"custodian {custodian!r} has no namespace; write it as {_FORMS}")
    if namespace.lower() not in KNOWN_NAMESPACES:
        raise ValueError(
            f"unknown custodian namespace {namespace!r} in {custodian!r}; expected one of "
            + ", ".join(KNOWN_NAMESPACES)
        )
    namespace = namespace.lower()
    if namespace in ACCOUNT_NAMESPACES:
        kind, slash, name = rest.partition("/")
        if namespace == "npm" and kind == TRUSTED_PUBLISHER and slash:
            if has_glob(name):
                raise ValueError(
                    f"custodian {custodian!r}: '*' is not allowed in a trusted publisher; "
                    "write the CI system's id, e.g. npm:trusted-publisher/github"
                )
            if not _CI_ID.fullmatch(name):
                raise ValueError(
                    f"custodian {custodian!r}: a trusted publisher is npm:trusted-publisher/ID, "
                    "ID being the CI system npm recorded (github, gitlab): letters, digits, "
                    "'.', '_' and '-'"
                )
            return custodian
        if not slash or kind not in ("user", "org", "group") or not name:
            forms = f"{namespace}:user/NAME or {namespace}:org/NAME"
            if namespace == "npm":
                forms = "npm:user/NAME, npm:org/NAME or npm:trusted-publisher/ID"
            raise ValueError(f"custodian {custodian!r}: a {namespace} custodian is {forms}")
        if has_glob(name):
            raise ValueError(
                f"custodian {custodian!r}: '*' is not allowed in an account name (anyone can "
                "register a matching account); list the accounts one by one"
            )
        if not _ACCOUNT.fullmatch(name):
            raise ValueError(f"custodian {custodian!r}: {name!r} is not an account name")
        return custodian
    identity, workflow = split_workflow(custodian)
    parts = identity.partition(":")[2].split("/")
    if namespace == "github" and len(parts) != 2:
        raise ValueError(
            f"custodian {custodian!r}: a GitHub custodian is github:OWNER/REPO "
            "(use github:OWNER/* for every repository of an owner)"
        )
    if len(parts) < 2:
        raise ValueError(
            f"custodian {custodian!r}: a {namespace} custodian is {namespace}:GROUP/REPO"
        )
    *owners, repo = parts
    for owner in owners:
        if has_glob(owner):
            raise ValueError(
                f"custodian {custodian!r}: '*' is not allowed in the owner (anyone can register "
                "a matching owner); it is allowed in the repository name"
            )
        if not _OWNER.fullmatch(owner):
            raise ValueError(f"custodian {custodian!r}: {owner!r} is not an owner name")
    if not _REPO.fullmatch(repo):
        raise ValueError(f"custodian {custodian!r}: {repo!r} is not a repository name")
    if workflow is not None:
        if namespace == "github" and not _GITHUB_WORKFLOW.fullmatch(workflow):
            raise ValueError(
                f"custodian {custodian!r}: the workflow after the second ':' must be a file in "
                ".github/workflows/, e.g. github:OWNER/REPO:.github/workflows/release.yml"
            )
        segments = workflow.split("/")
        if not _PATH.fullmatch(workflow) or any(s in ("", ".", "..") for s in segments):
            raise ValueError(
                f"custodian {custodian!r}: the workflow must be a path relative to the "
                "repository root"
            )
    return custodian


def check_numeric_id(custodian: str, numeric_id: str) -> str:
    if not numeric_id.isascii() or not numeric_id.isdigit():
        raise ValueError(f'numeric-id {numeric_id!r} must be a number, e.g. "123456"')
    namespace = custodian.partition(":")[0].lower()
    if namespace not in REPOSITORY_NAMESPACES:
        raise ValueError(
            f"numeric-id only applies to repository custodians (github:OWNER/REPO), "
            f"not to {custodian!r}"
        )
    if has_glob(custodian):
        raise ValueError(
            f"numeric-id names one repository; it cannot go with the pattern {custodian!r}"
        )
    return numeric_id


def check_custodian_everywhere(custodian: str) -> None:
    """What ``[[trusted-everywhere]]`` may not hold: ``npm:trusted-publisher/ID`` names a CI
    system every npm package can publish through, not an organisation's own identity."""
    if is_trusted_publisher(custodian):
        raise ValueError(
            f"custodian {custodian!r} cannot be trusted everywhere: it is a CI system any npm "
            "package can publish through, whoever owns it; trust it per package, or trust "
            "your own repositories everywhere (github:OWNER/*)"
        )


def check_custodian_for(package_key: str, custodian: str) -> None:
    """A registry account can only publish to its own registry."""
    namespace = custodian.partition(":")[0].lower()
    ecosystem = package_key.partition(":")[0]
    if namespace in ACCOUNT_NAMESPACES and namespace != ecosystem:
        raise ValueError(
            f"custodian {custodian!r} is a {namespace} account; it cannot publish {package_key}"
        )
