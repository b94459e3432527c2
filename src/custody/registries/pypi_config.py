"""Resolve the Python package index and credentials the way pip and uv would.

Precedence: explicit argument > ``CUSTODY_PYPI_INDEX`` > ``PIP_INDEX_URL`` >
``UV_DEFAULT_INDEX`` / ``UV_INDEX_URL`` > pip configuration files (``[install]`` before
``[global]``, as pip does) > uv configuration (project ``uv.toml`` / ``[tool.uv]``, user, system)
> the default of the installed pip. Only the primary index is read; extra indexes are not."""

from __future__ import annotations

import configparser
import logging
import netrc
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from custody.errors import InputError
from custody.registries.settings import Auth, PypiSettings
from custody.registries.urls import http_url_problem, redact_url, split_userinfo, with_slash

log = logging.getLogger(__name__)


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else None


def pip_config_files(env: Mapping[str, str], system_root: Path) -> list[Path]:
    """pip's configuration files in precedence order, highest first."""
    explicit = env.get("PIP_CONFIG_FILE")
    if explicit == os.devnull:
        return []  # pip loads no configuration at all
    files: list[Path] = []
    if explicit:
        files.append(Path(explicit))
    venv = env.get("VIRTUAL_ENV")
    if venv:
        files.append(Path(venv) / "pip.conf")
    home = _home(env)
    if not (explicit and Path(explicit).exists()):  # pip skips user files then
        xdg = env.get("XDG_CONFIG_HOME")
        if xdg:
            files.append(Path(xdg) / "pip" / "pip.conf")
        elif home is not None:
            files.append(home / ".config" / "pip" / "pip.conf")
        if home is not None:
            files.append(home / ".pip" / "pip.conf")
    files.append(system_root / "etc" / "pip.conf")
    for d in reversed((env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)):
        if d:
            files.append(system_root / d.lstrip("/") / "pip" / "pip.conf")
    return files


def _parse_pip_files(files: list[Path]) -> list[tuple[Path, configparser.RawConfigParser]]:
    parsed: list[tuple[Path, configparser.RawConfigParser]] = []
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            with path.open(encoding="utf-8") as fh:
                parser.read_file(fh)
        except FileNotFoundError:
            continue
        except configparser.Error as exc:
            raise _pip_syntax_error(exc, path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read pip configuration: {exc}", path=str(path)) from None
        parsed.append((path, parser))
    return parsed


def _pip_syntax_error(exc: configparser.Error, path: Path) -> InputError:
    """A malformed pip.conf, named by file and line only: configparser's message quotes the
    line, which may hold an index URL with its credentials."""
    lines = {number for number, _text in getattr(exc, "errors", None) or ()}
    lineno = getattr(exc, "lineno", None)  # a missing section header, a duplicate
    if isinstance(lineno, int):
        lines.add(lineno)
    numbers = sorted(lines)
    if len(numbers) == 1:
        return InputError("malformed pip configuration", path=str(path), line=numbers[0])
    where = f" (lines {', '.join(map(str, numbers))})" if numbers else ""
    return InputError(f"malformed pip configuration{where}", path=str(path))


def pip_setting(
    parsed: list[tuple[Path, configparser.RawConfigParser]], key: str
) -> tuple[str, str] | None:
    """``(where, value)`` of a pip option: ``[install]`` in any file beats ``[global]``."""
    for section in ("install", "global"):
        for path, parser in parsed:
            for spelling in (key, key.replace("-", "_")):
                if parser.has_option(section, spelling):
                    value = parser.get(section, spelling).strip()
                    if value:
                        return f"{path} [{section}] {key}", value
    return None


def _uv_index(table: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    for entry in table.get("index") or ():
        if isinstance(entry, dict) and entry.get("default") and isinstance(entry.get("url"), str):
            url: str = entry["url"]
            name = entry.get("name")
            if isinstance(name, str) and "@" not in url:
                key = re.sub(r"[^A-Z0-9]", "_", name.upper())
                user = env.get(f"UV_INDEX_{key}_USERNAME")
                password = env.get(f"UV_INDEX_{key}_PASSWORD")
                if user or password:
                    scheme, _, rest = url.partition("://")
                    cred = quote(user or "", safe="") + ":" + quote(password or "", safe="")
                    url = f"{scheme}://{cred}@{rest}"
            return url
    for value in (table.get("index-url"), (table.get("pip") or {}).get("index-url")):
        if isinstance(value, str) and value:
            return value
    return None


def _load_toml(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read uv configuration: {exc}", path=str(path)) from None


def uv_config_tables(
    project_dir: Path, env: Mapping[str, str], system_root: Path
) -> list[tuple[str, Mapping[str, Any]]]:
    """uv settings tables in precedence order: project (nearest ``uv.toml`` or ``[tool.uv]`` up to
    the git root), user, system."""
    if env.get("UV_NO_CONFIG"):
        return []
    out: list[tuple[str, Mapping[str, Any]]] = []
    here = project_dir.resolve()
    while True:
        uv_toml = _load_toml(here / "uv.toml")
        if uv_toml is not None:
            out.append((str(here / "uv.toml"), uv_toml))
            break
        pyproject = _load_toml(here / "pyproject.toml")
        tool_uv = ((pyproject or {}).get("tool") or {}).get("uv")
        if isinstance(tool_uv, dict):
            out.append((f"{here / 'pyproject.toml'} [tool.uv]", tool_uv))
            break
        if (here / ".git").exists() or here.parent == here:
            break
        here = here.parent
    home = _home(env)
    xdg = env.get("XDG_CONFIG_HOME")
    user_dir = Path(xdg) if xdg else (home / ".config" if home is not None else None)
    candidates = [user_dir / "uv" / "uv.toml"] if user_dir is not None else []
    for d in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep):
        if d:
            candidates.append(system_root / d.lstrip("/") / "uv" / "uv.toml")
    candidates.append(system_root / "etc" / "uv" / "uv.toml")
    for candidate in candidates:
        table = _load_toml(candidate)
        if table is not None:
            out.append((str(candidate), table))
    return out


def pip_default_index() -> str | None:
    """The default index of the pip installed next to Custody (pip knows it; we do not)."""
    try:
        from pip._internal.models.index import PyPI  # type: ignore[import-untyped,unused-ignore]
    except Exception:  # pip missing or reorganised
        return None
    url = getattr(PyPI, "simple_url", None)
    return url if isinstance(url, str) else None


def read_netrc(env: Mapping[str, str]) -> dict[str, Auth]:
    path_text = env.get("NETRC")
    home = _home(env)
    if path_text:
        path = Path(path_text)
    elif home is not None:
        path = home / ".netrc"
    else:
        return {}
    if not path.is_file():
        return {}
    try:
        parsed = netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:  # its message quotes a token: maybe a password
        log.warning("ignoring malformed netrc file %s (line %s)", path, exc.lineno)
        return {}
    except OSError as exc:
        log.warning("ignoring unreadable netrc file %s: %s", path, exc.strerror or exc)
        return {}
    return {
        host.lower(): Auth(username=login, password=password, source=str(path))
        for host, (login, _account, password) in parsed.hosts.items()
    }


def resolve_pypi(
    project_dir: Path, explicit: str | None, env: Mapping[str, str], system_root: Path
) -> PypiSettings:
    choice: tuple[str, str] | None = None
    if explicit:
        choice = ("--pypi-index", explicit)
    if choice is None:
        for name in ("CUSTODY_PYPI_INDEX", "PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL"):
            if env.get(name):
                choice = (name, env[name])
                break
    pip_files = _parse_pip_files(pip_config_files(env, system_root))
    if choice is None:
        choice = pip_setting(pip_files, "index-url")
    if choice is None:
        for where, table in uv_config_tables(project_dir, env, system_root):
            found = _uv_index(table, env)
            if found:
                choice = (where, found)
                break
    if choice is None:
        default = pip_default_index()
        if default:
            choice = ("pip's default index", default)
    if choice is None:
        raise InputError(
            "no Python package index configured: pass --pypi-index URL, set CUSTODY_PYPI_INDEX or "
            "PIP_INDEX_URL, or set index-url in pip.conf or uv.toml (pip was not found to ask for "
            "its default)"
        )
    source, raw = choice
    problem = http_url_problem(raw)
    if problem is not None:
        raise InputError(f"package index {redact_url(raw)!r} from {source} {problem}")
    url, user, password = split_userinfo(raw)
    auth: Auth | None = None
    if user is not None or password is not None:
        auth = Auth(username=user, password=password, source=source)
    token = env.get("CUSTODY_PYPI_TOKEN")
    if token:
        if ":" in token:  # "user:password" (e.g. "__token__:pypi-...") is Basic auth
            tuser, _, tpass = token.partition(":")
            auth = Auth(username=tuser, password=tpass, source="CUSTODY_PYPI_TOKEN")
        else:
            auth = Auth(token=token, source="CUSTODY_PYPI_TOKEN")
    cert = env.get("PIP_CERT") or (pip_setting(pip_files, "cert") or ("", ""))[1] or None
    return PypiSettings(
        index_url=with_slash(url), source=source, auth=auth, netrc=read_netrc(env), ca_file=cert
    )
