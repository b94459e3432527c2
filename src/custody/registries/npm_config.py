"""Resolve the npm registry and credentials the way npm itself would.

Precedence for the registry: explicit argument > ``CUSTODY_NPM_REGISTRY`` >
``npm_config_registry`` > project ``.npmrc`` (nearest, up to the git root) > user ``~/.npmrc``
(``$NPM_CONFIG_USERCONFIG``) > global ``$PREFIX/etc/npmrc`` > ``npm config get registry``.
Scoped registries and credentials merge across the files, nearer files winning."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from custody.errors import InputError
from custody.registries.settings import Auth, NpmSettings, nerf_dart
from custody.registries.urls import (
    http_url_problem,
    is_http_url,
    redact_url,
    split_userinfo,
    with_slash,
)

log = logging.getLogger(__name__)

NPM_SUBPROCESS_TIMEOUT = 15.0
_ENV_REF = re.compile(r"(?<!\\)(\\*)\$\{([^${}?]+)(\?)?\}")
_AUTH_KEYS = ("_authToken", "_auth", "username", "_password")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """npm's ``${VAR}`` expansion: unknown variables stay as written, ``${VAR?}`` becomes ""."""

    def sub(m: re.Match[str]) -> str:
        escapes, name, optional = m.group(1), m.group(2), m.group(3)
        if len(escapes) % 2:  # an odd number of backslashes escapes the expression
            return m.group(0)[(len(escapes) + 1) // 2 :]
        value = env.get(name)
        if value is None:
            value = "" if optional else "${" + name + "}"
        return escapes[len(escapes) // 2 :] + value

    return _ENV_REF.sub(sub, text)


def parse_npmrc(text: str, env: Mapping[str, str]) -> dict[str, str]:
    """The top-level ``key=value`` pairs of an npmrc (ini) file, with ``${ENV}`` expanded."""
    out: dict[str, str] = {}
    in_section = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("[") and line.endswith("]"):
            in_section = True  # npm nests these; registry settings never live in sections
            continue
        if in_section or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[expand_env(key, env)] = expand_env(value, env)
    return out


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else None


def project_npmrc(project_dir: Path, env: Mapping[str, str]) -> Path | None:
    """The nearest ``.npmrc`` from the project directory up to the git root (the user's own
    ``~/.npmrc`` is user configuration, never project configuration)."""
    home = _home(env)
    here = project_dir.resolve()
    while True:
        candidate = here / ".npmrc"
        if (home is None or here != home.resolve()) and candidate.is_file():
            return candidate
        if (here / ".git").exists() or here.parent == here:
            return None
        here = here.parent


def _env_get(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name)
        if value:
            return name, value
    return None


def _global_npmrc(env: Mapping[str, str]) -> Path | None:
    found = _env_get(env, "NPM_CONFIG_GLOBALCONFIG", "npm_config_globalconfig")
    if found:
        return Path(found[1])
    prefix = _env_get(env, "NPM_CONFIG_PREFIX", "npm_config_prefix", "PREFIX")
    if prefix:
        return Path(prefix[1]) / "etc" / "npmrc"
    node = shutil.which("node", path=env.get("PATH", ""))
    if node:  # npm's default prefix is the directory above node's bin/
        return Path(node).resolve().parent.parent / "etc" / "npmrc"
    return None


def _config_files(project_dir: Path, env: Mapping[str, str]) -> list[Path]:
    """npmrc files in precedence order, highest first."""
    files: list[Path] = []
    project = project_npmrc(project_dir, env)
    if project:
        files.append(project)
    user = _env_get(env, "NPM_CONFIG_USERCONFIG", "npm_config_userconfig")
    home = _home(env)
    if user:
        files.append(Path(user[1]))
    elif home is not None:
        files.append(home / ".npmrc")
    global_rc = _global_npmrc(env)
    if global_rc is not None:
        files.append(global_rc)
    return files


def _read(path: Path, env: Mapping[str, str]) -> dict[str, str] | None:
    try:
        return parse_npmrc(path.read_text(encoding="utf-8"), env)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read npm configuration: {exc}", path=str(path)) from None


def npm_config_get_registry(project_dir: Path, env: Mapping[str, str]) -> str | None:
    """Ask npm itself (it knows its built-in default). None when npm is missing or fails."""
    npm = shutil.which("npm", path=env.get("PATH", ""))
    if npm is None:
        return None
    try:
        done = subprocess.run(
            [npm, "config", "get", "registry"],
            cwd=project_dir,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=NPM_SUBPROCESS_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("npm config get registry failed: %s", exc)
        return None
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines or not is_http_url(lines[-1]):
        return None
    return lines[-1]


def _decode_b64(value: str, what: str, where: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InputError(f"{what} is not valid base64", path=where) from None


def _auth_from(values: Mapping[str, str], prefix: str, where: str) -> Auth | None:
    token = values.get(prefix + "_authToken")
    if token:
        return Auth(token=token, source=where)
    basic = values.get(prefix + "_auth")
    if basic:
        user, _, secret = _decode_b64(basic, prefix + "_auth", where).partition(":")
        return Auth(username=user, password=secret, source=where)
    username = values.get(prefix + "username")
    encoded = values.get(prefix + "_password")
    if username and encoded:
        return Auth(
            username=username,
            password=_decode_b64(encoded, prefix + "_password", where),
            source=where,
        )
    return None


def _checked_url(value: str, where: str) -> str:
    problem = http_url_problem(value)
    if problem is not None:
        raise InputError(f"npm registry {redact_url(value)!r} {problem}", path=where)
    return with_slash(value)


def resolve_npm(project_dir: Path, explicit: str | None, env: Mapping[str, str]) -> NpmSettings:
    parsed: list[tuple[str, dict[str, str]]] = []
    for path in _config_files(project_dir, env):
        values = _read(path, env)
        if values is not None:
            parsed.append((str(path), values))

    choice: tuple[str, str] | None = None
    if explicit:
        choice = ("--npm-registry", explicit)
    else:
        choice = _env_get(env, "CUSTODY_NPM_REGISTRY", "npm_config_registry", "NPM_CONFIG_REGISTRY")
    if choice is None:
        for where, values in parsed:
            if values.get("registry"):
                choice = (where, values["registry"])
                break
    if choice is None:
        answer = npm_config_get_registry(project_dir, env)
        if answer:
            choice = ("npm config get registry", answer)
    if choice is None:
        raise InputError(
            "no npm registry configured: pass --npm-registry URL, set CUSTODY_NPM_REGISTRY, "
            "or put registry=URL in .npmrc (npm was not found to ask for its default)"
        )
    source, raw = choice
    url, user, password = split_userinfo(_checked_url(raw, source))

    scopes: dict[str, str] = {}
    auth: dict[str, Auth] = {}
    for where, values in reversed(parsed):  # lowest precedence first, nearer files overwrite
        for key, value in values.items():
            if key.startswith("@") and key.endswith(":registry") and value:
                scopes[key[: -len(":registry")].lower()] = split_userinfo(
                    _checked_url(value, where)
                )[0]
        for dart in {k.rsplit(":", 1)[0] + ":" for k in values if k.startswith("//") and ":" in k}:
            found = _auth_from(values, dart, where)
            if found is not None:
                auth[dart[:-1]] = found

    main_dart = nerf_dart(url)
    if main_dart not in auth:
        # legacy unscoped credentials (npm < 9) belong to the default registry
        for where, values in parsed:
            legacy = _auth_from(values, "", where)
            if legacy is not None:
                auth[main_dart] = legacy
                break
    if user is not None or password is not None:
        auth.setdefault(main_dart, Auth(username=user, password=password, source=source))
    token = env.get("CUSTODY_NPM_TOKEN")
    if token:
        auth[main_dart] = Auth(token=token, source="CUSTODY_NPM_TOKEN")
    cafile = next((values["cafile"] for _w, values in parsed if values.get("cafile")), None)
    return NpmSettings(registry=url, source=source, scopes=scopes, auth=auth, ca_file=cafile)
