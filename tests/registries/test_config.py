"""Registry settings from the user's own configuration files and an explicit environment."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from custody.errors import InputError
from custody.model import Ecosystem
from custody.registries.config import resolve_settings
from custody.registries.npm_config import expand_env, parse_npmrc
from custody.registries.settings import Auth, NpmSettings, PypiSettings
from custody.registries.urls import redact_url


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    sub = root / "packages" / "app"
    sub.mkdir(parents=True)
    return sub


@pytest.fixture
def env(home: Path, tmp_path: Path) -> dict[str, str]:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    return {"HOME": str(home), "PATH": str(empty_bin)}


def npm(project: Path, env: dict[str, str], explicit: str | None = None) -> NpmSettings:
    settings = resolve_settings(project, explicit, None, env, ecosystems=[Ecosystem.NPM])
    assert settings.npm is not None and settings.pypi is None
    return settings.npm


def pypi(project: Path, env: dict[str, str], explicit: str | None = None) -> PypiSettings:
    settings = resolve_settings(
        project, None, explicit, env, ecosystems=[Ecosystem.PYPI], system_root=project / "sys"
    )
    assert settings.pypi is not None and settings.npm is None
    return settings.pypi


# --------------------------------------------------------------------------- npm


def test_npm_precedence(project: Path, home: Path, env: dict[str, str], tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "etc").mkdir(parents=True)
    (prefix / "etc" / "npmrc").write_text("registry=http://127.0.0.1:1/global/\n")
    env["PREFIX"] = str(prefix)
    assert npm(project, env).registry == "http://127.0.0.1:1/global/"
    (home / ".npmrc").write_text("registry=http://127.0.0.1:2/user\n")
    assert npm(project, env).registry == "http://127.0.0.1:2/user/"
    (project.parent.parent / ".npmrc").write_text("registry = http://127.0.0.1:3/project/\n")
    found = npm(project, env)
    assert found.registry == "http://127.0.0.1:3/project/"
    assert found.source.endswith(".npmrc")
    env["npm_config_registry"] = "http://127.0.0.1:4/"
    assert npm(project, env).registry == "http://127.0.0.1:4/"
    env["CUSTODY_NPM_REGISTRY"] = "http://127.0.0.1:5/"
    assert npm(project, env).registry == "http://127.0.0.1:5/"
    assert npm(project, env, "http://127.0.0.1:6").registry == "http://127.0.0.1:6/"


def test_project_npmrc_search_stops_at_the_git_root(
    project: Path, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / ".npmrc").write_text("registry=http://127.0.0.1:9/outside/\n")
    env["NPM_CONFIG_USERCONFIG"] = str(tmp_path / "absent-npmrc")
    with pytest.raises(InputError, match="no npm registry configured"):
        npm(project, env)


def test_npmrc_scopes_and_credentials(project: Path, home: Path, env: dict[str, str]) -> None:
    basic = base64.b64encode(b"carol:pa55").decode()
    password = base64.b64encode(b"dave-pw").decode()
    (home / ".npmrc").write_text(
        "; user config\n"
        "registry=http://127.0.0.1:4873/\n"
        "@corp:registry=http://127.0.0.1:4874/npm/\n"
        "//127.0.0.1:4873/:_authToken=${NPM_TOKEN}\n"
        f"//127.0.0.1:4874/npm/:_auth={basic}\n"
        "//127.0.0.1:4875/:username=dave\n"
        f"//127.0.0.1:4875/:_password={password}\n"
        "[section]\nregistry=http://127.0.0.1:1/ignored/\n"
    )
    env["NPM_TOKEN"] = "tok-123"
    found = npm(project, env)
    assert found.registry == "http://127.0.0.1:4873/"
    assert found.registry_for("@corp/lib") == "http://127.0.0.1:4874/npm/"
    assert found.registry_for("@Corp/lib") == "http://127.0.0.1:4874/npm/"
    assert found.registry_for("left-pad") == "http://127.0.0.1:4873/"
    assert found.auth_for("http://127.0.0.1:4873/left-pad") == Auth(
        token="tok-123", source=str(home / ".npmrc")
    )
    corp = found.auth_for("http://127.0.0.1:4874/npm/@corp%2flib")
    assert corp is not None and (corp.username, corp.password) == ("carol", "pa55")
    dave = found.auth_for("http://127.0.0.1:4875/x")
    assert dave is not None and dave.password == "dave-pw"
    assert found.auth_for("http://127.0.0.1:4876/x") is None
    assert "tok-123" not in repr(found) and "pa55" not in repr(found)


def test_custody_npm_token_wins_for_the_default_registry(
    project: Path, home: Path, env: dict[str, str]
) -> None:
    (home / ".npmrc").write_text("registry=http://127.0.0.1:4873/\n_authToken=legacy\n")
    legacy = npm(project, env).auth_for("http://127.0.0.1:4873/pkg")
    assert legacy is not None and legacy.token == "legacy"
    env["CUSTODY_NPM_TOKEN"] = "from-env"
    found = npm(project, env).auth_for("http://127.0.0.1:4873/pkg")
    assert found is not None and found.header() == "Bearer from-env"


def fake_npm(bin_dir: Path, answer: str, marker: Path) -> None:
    script = bin_dir / "npm"
    script.write_text(
        f"#!/bin/sh\necho called >> {marker}\necho 'npm warn noise' >&2\necho {answer}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_npm_config_get_registry_is_the_last_resort(
    project: Path, home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "npm-called"
    fake_npm(Path(env["PATH"]), "http://127.0.0.1:4999/", marker)
    found = npm(project, env)
    assert found.registry == "http://127.0.0.1:4999/"
    assert found.source == "npm config get registry"
    assert marker.read_text().count("called") == 1
    (home / ".npmrc").write_text("registry=http://127.0.0.1:4873/\n")
    assert npm(project, env).registry == "http://127.0.0.1:4873/"
    assert marker.read_text().count("called") == 1  # not asked when a file answered


def test_no_npm_registry_explains_how_to_configure(project: Path, env: dict[str, str]) -> None:
    with pytest.raises(InputError) as info:
        npm(project, env)
    assert "CUSTODY_NPM_REGISTRY" in str(info.value) and ".npmrc" in str(info.value)


def test_bad_registry_value_names_the_file(project: Path, home: Path, env: dict[str, str]) -> None:
    (home / ".npmrc").write_text("registry=not a url\n")
    with pytest.raises(InputError) as info:
        npm(project, env)
    assert info.value.path == str(home / ".npmrc")


def test_registry_userinfo_becomes_credentials(project: Path, env: dict[str, str]) -> None:
    env["CUSTODY_NPM_REGISTRY"] = "http://erin:se%40cret@127.0.0.1:4873/"
    found = npm(project, env)
    assert found.registry == "http://127.0.0.1:4873/"
    auth = found.auth_for(found.registry + "pkg")
    assert auth is not None and (auth.username, auth.password) == ("erin", "se@cret")


def test_env_expansion_follows_npm() -> None:
    env = {"A": "1"}
    assert expand_env("x${A}y", env) == "x1y"
    assert expand_env("${MISSING}", env) == "${MISSING}"
    assert expand_env("${MISSING?}", env) == ""
    assert expand_env("\\${A}", env) == "${A}"
    assert parse_npmrc('key = "quoted value"\n# c\n', env) == {"key": "quoted value"}


# --------------------------------------------------------------------------- PyPI


def test_pypi_environment_precedence(project: Path, env: dict[str, str]) -> None:
    env["UV_INDEX_URL"] = "http://127.0.0.1:1/uv-old/simple"
    assert pypi(project, env).index_url == "http://127.0.0.1:1/uv-old/simple/"
    env["UV_DEFAULT_INDEX"] = "http://127.0.0.1:2/simple/"
    assert pypi(project, env).index_url == "http://127.0.0.1:2/simple/"
    env["PIP_INDEX_URL"] = "http://127.0.0.1:3/simple/"
    assert pypi(project, env).source == "PIP_INDEX_URL"
    env["CUSTODY_PYPI_INDEX"] = "http://127.0.0.1:4/simple/"
    assert pypi(project, env).index_url == "http://127.0.0.1:4/simple/"
    assert pypi(project, env, "http://127.0.0.1:5/simple").index_url == (
        "http://127.0.0.1:5/simple/"
    )


def test_pip_configuration_files(project: Path, home: Path, env: dict[str, str]) -> None:
    system = project / "sys" / "etc"
    system.mkdir(parents=True)
    (system / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:1/simple/\n")
    assert pypi(project, env).index_url == "http://127.0.0.1:1/simple/"
    user = home / ".config" / "pip"
    user.mkdir(parents=True)
    (user / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:2/simple/\n")
    assert pypi(project, env).index_url == "http://127.0.0.1:2/simple/"
    # pip: a command section ([install]) in any file beats [global]
    (system / "pip.conf").write_text("[install]\nindex-url = http://127.0.0.1:3/simple/\n")
    found = pypi(project, env)
    assert found.index_url == "http://127.0.0.1:3/simple/"
    assert "[install]" in found.source
    explicit = project / "explicit.conf"
    explicit.write_text("[install]\nindex-url = http://127.0.0.1:4/simple/\ncert = /nowhere\n")
    env["PIP_CONFIG_FILE"] = str(explicit)
    assert pypi(project, env).index_url == "http://127.0.0.1:4/simple/"
    assert pypi(project, env).ca_file == "/nowhere"
    env["PIP_CONFIG_FILE"] = os.devnull  # pip then loads no file at all
    assert pypi(project, env).source == "pip's default index"


def test_uv_configuration(project: Path, home: Path, env: dict[str, str]) -> None:
    user = home / ".config" / "uv"
    user.mkdir(parents=True)
    (user / "uv.toml").write_text('index-url = "http://127.0.0.1:1/simple/"\n')
    assert pypi(project, env).index_url == "http://127.0.0.1:1/simple/"
    repo = project.parent.parent
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[[tool.uv.index]]\nname = "corp-internal"\n'
        'url = "http://127.0.0.1:2/simple/"\ndefault = true\n'
    )
    env["UV_INDEX_CORP_INTERNAL_USERNAME"] = "frank"
    env["UV_INDEX_CORP_INTERNAL_PASSWORD"] = "pw"
    found = pypi(project, env)
    assert found.index_url == "http://127.0.0.1:2/simple/"
    assert found.auth is not None and found.auth.username == "frank"
    (project / "uv.toml").write_text('[pip]\nindex-url = "http://127.0.0.1:3/simple/"\n')
    assert pypi(project, env).index_url == "http://127.0.0.1:3/simple/"
    env["UV_NO_CONFIG"] = "1"
    assert pypi(project, env).source == "pip's default index"


def test_pip_default_comes_from_the_installed_pip(project: Path, env: dict[str, str]) -> None:
    from pip._internal.models.index import PyPI  # type: ignore[import-untyped,unused-ignore]

    found = pypi(project, env)
    assert found.index_url.rstrip("/") == PyPI.simple_url.rstrip("/")


def test_pypi_credentials_and_redaction(project: Path, env: dict[str, str], home: Path) -> None:
    env["PIP_INDEX_URL"] = "http://gina:hunter2@127.0.0.1:3141/root/dev/+simple/"
    found = pypi(project, env)
    assert found.index_url == "http://127.0.0.1:3141/root/dev/+simple/"
    assert "hunter2" not in repr(found)
    auth = found.auth_for("http://127.0.0.1:3141/root/dev/+f/abc/x.whl")
    assert auth is not None and auth.password == "hunter2"
    assert found.auth_for("http://127.0.0.2:3141/files/x.whl") is None  # another origin
    env["CUSTODY_PYPI_TOKEN"] = "__token__:pypi-abc"
    auth = pypi(project, env).auth
    assert auth is not None and (auth.username, auth.password) == ("__token__", "pypi-abc")
    env["CUSTODY_PYPI_TOKEN"] = "opaque"
    auth = pypi(project, env).auth
    assert auth is not None and auth.header() == "Bearer opaque"


def test_netrc_credentials_per_host(project: Path, env: dict[str, str], home: Path) -> None:
    (home / ".netrc").write_text("machine files.registry.example login hal password pw9\n")
    (home / ".netrc").chmod(0o600)
    env["PIP_INDEX_URL"] = "http://127.0.0.1:3141/simple/"
    found = pypi(project, env)
    auth = found.auth_for("https://files.registry.example/packages/x.whl")
    assert auth is not None and (auth.username, auth.password) == ("hal", "pw9")


def test_only_the_needed_ecosystems_are_resolved(project: Path, env: dict[str, str]) -> None:
    env["PIP_INDEX_URL"] = "http://127.0.0.1:3141/simple/"
    settings = resolve_settings(project, None, None, env, ecosystems=[Ecosystem.PYPI])
    assert settings.npm is None  # npm has nothing configured, and nobody needs it


def test_not_an_http_url(project: Path, env: dict[str, str]) -> None:
    env["PIP_INDEX_URL"] = "file:///srv/simple"
    with pytest.raises(InputError, match="not an http"):
        pypi(project, env)


def test_redact_url() -> None:
    assert redact_url("https://u:p@registry.example/x") == "https://***@registry.example/x"
    assert redact_url("https://registry.example/x") == "https://registry.example/x"


# --------------------------------------------------------------------------- bad values

BAD_PORTS = ["http://u:TOKSECRET@127.0.0.1:abc/", "http://u:TOKSECRET@127.0.0.1:99999/"]


@pytest.mark.parametrize("url", BAD_PORTS)
@pytest.mark.parametrize("where", ["--npm-registry", "CUSTODY_NPM_REGISTRY", ".npmrc", "scope"])
def test_an_npm_registry_with_a_bad_port_is_bad_usage(
    project: Path, home: Path, env: dict[str, str], url: str, where: str
) -> None:
    explicit = url if where == "--npm-registry" else None
    if where == "CUSTODY_NPM_REGISTRY":
        env[where] = url
    elif where == ".npmrc":
        (home / ".npmrc").write_text(f"registry={url}\n")
    elif where == "scope":
        (home / ".npmrc").write_text(f"registry=http://127.0.0.1:1/\n@corp:registry={url}\n")
    with pytest.raises(InputError) as info:
        npm(project, env, explicit)
    message = str(info.value)
    assert info.value.exit_code == 2 and "not a valid URL" in message
    assert "TOKSECRET" not in message
    expected = str(home / ".npmrc") if where in (".npmrc", "scope") else where
    assert info.value.path == expected


@pytest.mark.parametrize("url", [u + "simple/" for u in BAD_PORTS])
@pytest.mark.parametrize("where", ["--pypi-index", "PIP_INDEX_URL", "pip.conf"])
def test_a_package_index_with_a_bad_port_is_bad_usage(
    project: Path, home: Path, env: dict[str, str], url: str, where: str
) -> None:
    explicit = url if where == "--pypi-index" else None
    if where == "PIP_INDEX_URL":
        env[where] = url
    elif where == "pip.conf":
        (home / ".pip").mkdir()
        (home / ".pip" / "pip.conf").write_text(f"[global]\nindex-url = {url}\n")
    with pytest.raises(InputError) as info:
        pypi(project, env, explicit)
    message = str(info.value)
    assert info.value.exit_code == 2 and "not a valid URL" in message
    assert "TOKSECRET" not in message
    assert where in message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("index-url = http://alice:pypi-SECRET-123@127.0.0.1:1/simple/\n", ":1: "),
        (
            "[global]\ntimeout = 5\nalice pypi-SECRET-123\npypi-SECRET-123\n",
            "(lines 3, 4)",
        ),
    ],
)
def test_a_malformed_pip_conf_is_named_by_line_without_its_text(
    project: Path, home: Path, env: dict[str, str], text: str, where: str
) -> None:
    """configparser quotes the offending line, and a pip.conf line may hold credentials."""
    conf = home / ".pip" / "pip.conf"
    conf.parent.mkdir()
    conf.write_text(text)
    with pytest.raises(InputError) as info:
        pypi(project, env)
    message = str(info.value)
    assert "SECRET" not in message and "alice" not in message
    assert message.startswith(str(conf)) and where in message
    assert info.value.exit_code == 2


def test_a_malformed_netrc_is_ignored_without_quoting_it(
    project: Path, home: Path, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login alice password NETRC SECRET\n")
    netrc.chmod(0o600)
    env["PIP_INDEX_URL"] = "http://127.0.0.1:3141/simple/"
    with caplog.at_level("WARNING"):
        found = pypi(project, env)
    assert found.netrc == {}
    assert str(netrc) in caplog.text and "line" in caplog.text
    assert "SECRET" not in caplog.text
