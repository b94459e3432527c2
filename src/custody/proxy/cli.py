"""``custody proxy``: run the registry firewall; ``custody proxy approvals``: its reviews."""

from __future__ import annotations

import logging
import os
import sys
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from custody.console import err as _err
from custody.console import escape
from custody.errors import InputError
from custody.model import Ecosystem

PROXY_HELP = (
    "Run the registry firewall: an npm registry and a Python package index in front of your "
    "upstream registries, for unmodified npm, pip and uv. Releases the trust file would hold "
    "(a new custodian, a release younger than the cooldown, known malicious) are removed from "
    "the metadata clients resolve against, and their files are refused with 403 and an "
    "explanation.\n\n"
    "URLs: /npm/ (an npm registry), /pypi/simple/ (a PEP 503/691 index), /-/custody/ (the "
    "admin API), /healthz, /metrics.\n\n"
    "Examples:\n\n"
    "custody proxy --listen 127.0.0.1:8080 --trust-file custody.toml --audit-log audit.jsonl"
    "\n\n"
    "npm config set registry http://127.0.0.1:8080/npm/\n\n"
    "pip install --index-url http://127.0.0.1:8080/pypi/simple/ requests\n\n"
    "uv pip install --index-url http://127.0.0.1:8080/pypi/simple/ requests\n\n"
    "The admin API needs CUSTODY_PROXY_ADMIN_TOKEN (or --admin-token-file): curl -H "
    '"Authorization: Bearer $CUSTODY_PROXY_ADMIN_TOKEN" http://127.0.0.1:8080/-/custody/holds'
    "\n\n"
    "Several replicas agree when they share one PostgreSQL ledger (--database "
    "postgresql://...). Upstreams default to your own npm and pip/uv configuration. "
    "See docs/proxy.md."
)

proxy_app = typer.Typer(
    name="proxy",
    help=PROXY_HELP,
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
)
approvals_app = typer.Typer(
    name="approvals",
    help=(
        "Approvals and denials made at the firewall (they live in the ledger).\n\n"
        "Example: custody proxy approvals export --trust-file custody.toml"
    ),
    no_args_is_help=True,
    add_completion=False,
)
proxy_app.add_typer(approvals_app)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Ledger database URL (sqlite:///path or postgresql://...), shared by replicas. "
        "Default: CUSTODY_DATABASE_URL, else SQLite in the user cache directory.",
        envvar="CUSTODY_DATABASE_URL",
        show_envvar=False,
    ),
]
SchemaOpt = Annotated[
    str | None,
    typer.Option(
        "--database-schema",
        help="PostgreSQL schema for the ledger's tables (created if missing).",
        envvar="CUSTODY_DATABASE_SCHEMA",
        show_envvar=False,
    ),
]


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--listen must be HOST:PORT, e.g. 127.0.0.1:8080; got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _upstreams(
    npm_upstream: str | None, pypi_upstream: str | None, no_npm: bool, no_pypi: bool
) -> tuple[Any, Any, tuple[str, ...]]:
    from custody.registries.config import resolve_settings

    env = dict(os.environ)
    found: dict[Ecosystem, Any] = {}
    ca_files: tuple[str, ...] = ()
    for eco, explicit, off in (
        (Ecosystem.NPM, npm_upstream, no_npm),
        (Ecosystem.PYPI, pypi_upstream, no_pypi),
    ):
        if off:
            continue
        try:
            settings = resolve_settings(
                Path.cwd(),
                npm_upstream if eco is Ecosystem.NPM else None,
                pypi_upstream if eco is Ecosystem.PYPI else None,
                env,
                ecosystems={eco},
            )
        except InputError as exc:
            if explicit:
                raise
            _err.print(f"[yellow]note:[/] no {eco.value} upstream: {escape(str(exc))}")
            continue
        found[eco] = settings.npm if eco is Ecosystem.NPM else settings.pypi
        ca_files += settings.ca_files
    return found.get(Ecosystem.NPM), found.get(Ecosystem.PYPI), tuple(dict.fromkeys(ca_files))


def _not_itself(url: str, host: str, port: int) -> None:
    from custody.registries.urls import origin

    _scheme, up_host, up_port = origin(url)
    local = (
        {host.lower(), "localhost", "127.0.0.1", "::1"}
        if host in ("0.0.0.0", "::")
        else {host.lower()}
    )
    if up_port == port and up_host in local:
        raise InputError(f"the upstream {url} is this proxy itself: give the real registry")


@proxy_app.callback()
def proxy(
    ctx: typer.Context,
    listen: Annotated[
        str, typer.Option("--listen", help="Address and port to serve on (HOST:PORT).")
    ] = "127.0.0.1:8080",
    npm_upstream: Annotated[
        str | None,
        typer.Option(
            "--npm-upstream",
            help="The npm registry to protect. Default: your npm configuration "
            "(CUSTODY_NPM_REGISTRY, .npmrc, npm config get registry).",
            envvar="CUSTODY_NPM_REGISTRY",
            show_envvar=False,
        ),
    ] = None,
    pypi_upstream: Annotated[
        str | None,
        typer.Option(
            "--pypi-upstream",
            help="The Python simple index to protect (.../simple/). Default: your pip/uv "
            "configuration (CUSTODY_PYPI_INDEX, PIP_INDEX_URL, pip.conf, uv.toml).",
            envvar="CUSTODY_PYPI_INDEX",
            show_envvar=False,
        ),
    ] = None,
    no_npm: Annotated[bool, typer.Option("--no-npm", help="Serve no npm registry.")] = False,
    no_pypi: Annotated[bool, typer.Option("--no-pypi", help="Serve no Python index.")] = False,
    trust_file: Annotated[
        Path | None,
        typer.Option(
            "--trust-file",
            help="custody.toml to judge by; reloaded when it changes on disk. Default: "
            "CUSTODY_TRUST_FILE, else custody.toml here or in a parent directory.",
            envvar="CUSTODY_TRUST_FILE",
            show_envvar=False,
        ),
    ] = None,
    database: DatabaseOpt = None,
    database_schema: SchemaOpt = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            "--audit-log",
            help="Append one JSON line per decision here (decisions also go to the ledger).",
            envvar="CUSTODY_PROXY_AUDIT_LOG",
            show_envvar=False,
        ),
    ] = None,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-token-file",
            help="File holding the admin API's bearer token. Default: "
            "CUSTODY_PROXY_ADMIN_TOKEN; without either the admin API is off.",
        ),
    ] = None,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes",
            help="Pass npm publishes, logins and other writes to the upstream (with the "
            "client's credentials). Default: refuse them with 405.",
        ),
    ] = False,
    unknown_packages: Annotated[
        str,
        typer.Option(
            "--unknown-packages",
            help="Packages the trust file does not know. first-use: trust each package's "
            "first custodians and hold custody changes after them. policy: judge them as "
            "`custody check` does ([policy] new-packages; under review every release is held).",
        ),
    ] = "first-use",
    max_age: Annotated[
        float,
        typer.Option("--max-age", min=0, help="Seconds before upstream metadata is revalidated."),
    ] = 60.0,
    stale_after: Annotated[
        float,
        typer.Option(
            "--stale-after",
            min=0.1,
            help="Seconds to wait for a slow upstream before answering from the last good "
            "filtered copy (marked stale).",
        ),
    ] = 3.0,
    upstream_timeout: Annotated[
        float, typer.Option("--upstream-timeout", min=0.1, help="Seconds per upstream attempt.")
    ] = 10.0,
    sync_interval: Annotated[
        float,
        typer.Option(
            "--sync-interval",
            min=0.05,
            help="Seconds between checks for approvals made on other replicas and for trust "
            "file changes.",
        ),
    ] = 1.0,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The URL clients use to reach the proxy (behind a load balancer). Default: "
            "taken from each request's Host header.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Verified tarballs and files, by digest."),
    ] = None,
    artifact_host: Annotated[
        list[str] | None,
        typer.Option(
            "--artifact-host",
            help="Fetch artifacts only from the upstreams' own hosts and these (repeatable). "
            "Default: any host the upstream's documents name.",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Trust X-Forwarded-For/-Proto from these addresses (a load balancer).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from custody.proxy.app import create_app
    from custody.proxy.config import ProxyConfig, read_admin_token
    from custody.trust import find_trust_file

    host, port = _listen(listen)
    npm, pypi, ca_files = _upstreams(npm_upstream, pypi_upstream, no_npm, no_pypi)
    for settings_url in ([npm.registry] if npm else []) + ([pypi.index_url] if pypi else []):
        _not_itself(settings_url, host, port)
    trust_path = trust_file or find_trust_file(Path.cwd())
    if trust_path is not None and not trust_path.exists():
        raise InputError("trust file not found", path=str(trust_path))
    config = ProxyConfig(
        npm=npm,
        pypi=pypi,
        trust_file=trust_path,
        database=database,
        database_schema=database_schema,
        audit_log=audit_log,
        admin_token=read_admin_token(admin_token_file),
        allow_writes=allow_writes,
        unknown_packages=unknown_packages,
        max_age=max_age,
        stale_after=stale_after,
        upstream_timeout=upstream_timeout,
        sync_interval=sync_interval,
        public_url=public_url.rstrip("/") if public_url else None,
        cache_dir=cache_dir,
        artifact_hosts=tuple(artifact_host) if artifact_host else None,
        log_level=log_level,
        ca_files=ca_files,
    )
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app = create_app(config)
    shown = f"[{host}]" if ":" in host else host
    _err.print(f"custody proxy on http://{shown}:{port}")
    if npm is not None:
        _err.print(f"  npm:  http://{shown}:{port}/npm/  ->  {escape(npm.registry)}")
    if pypi is not None:
        _err.print(f"  pypi: http://{shown}:{port}/pypi/simple/  ->  {escape(pypi.index_url)}")
    _err.print(
        f"  trust file: {trust_path or 'none (default policy)'}; admin API: "
        f"{'on' if config.admin_token else 'off'}; unknown packages: {unknown_packages}"
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning" if log_level == "info" else log_level,
            access_log=False,
            server_header=False,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=16 * 1024,
            lifespan="on",
        )
    )
    server.run()


# -- approvals -----------------------------------------------------------------------------------


def _latest(database: str | None, schema: str | None) -> list[Any]:
    from custody.ledger import open_ledger

    ledger = open_ledger(database, schema=schema)
    try:
        reviews = ledger.reviews_since(0)
    finally:
        ledger.close()
    latest: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
    from custody.proxy.judging import version_key

    for r in reviews:
        key = (r.ecosystem.value, r.package, version_key(r.ecosystem, r.version))
        latest.pop(key, None)
        latest[key] = r
    return list(latest.values())


@approvals_app.command("list")
def approvals_list(database: DatabaseOpt = None, database_schema: SchemaOpt = None) -> None:
    """List the latest approval or denial of every release reviewed at the firewall."""
    for r in _latest(database, database_schema):
        stamp = r.at.strftime("%Y-%m-%d %H:%M")
        ref = f"{r.ecosystem.value}:{r.package}@{r.version}"
        print(f"{stamp}  {r.verdict:<7}  {ref}  by {r.by}: {r.reason}")


@approvals_app.command("export")
def approvals_export(
    trust_file: Annotated[
        Path | None,
        typer.Option(
            "--trust-file",
            help="The trust file to write approvals into. Default: custody.toml here or in a "
            "parent directory.",
            envvar="CUSTODY_TRUST_FILE",
            show_envvar=False,
        ),
    ] = None,
    database: DatabaseOpt = None,
    database_schema: SchemaOpt = None,
) -> None:
    """Write the firewall's approvals into custody.toml as [[approved."ECO:NAME"]] entries, so
    that `custody check` in CI honours them once the file is committed. Denials have no place
    in the trust file: they are listed, not written."""
    from custody.trust import TrustFileEditor, find_trust_file

    path = trust_file or find_trust_file(Path.cwd())
    if path is None or not path.exists():
        raise InputError("no custody.toml found: pass --trust-file (or run `custody init`)")
    reviews = _latest(database, database_schema)
    editor = TrustFileEditor.open(path)
    written = 0
    denied = []
    for r in reviews:
        key = f"{r.ecosystem.value}:{r.package}"
        if r.verdict == "deny":
            denied.append(f"{key}@{r.version}")
            if editor.trust_file.approval(key, r.version) is not None:
                _err.print(
                    f"[yellow]warning:[/] {escape(key)}@{escape(r.version)} is approved in "
                    f"{escape(str(path))} but was "
                    "denied at the firewall later; review that entry"
                )
            continue
        existing = editor.trust_file.approval(key, r.version)
        reason = f"approved at the registry firewall: {r.reason}"
        if existing is not None and existing.by == r.by and existing.reason == reason:
            continue
        editor.add_approval(key, r.version, by=r.by, reason=reason, at=r.at)
        written += 1
    if written:
        editor.save()
    _err.print(
        f"{written} approval(s) written to {escape(str(path))} at "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M}Z"
    )
    if denied:
        _err.print(
            f"{len(denied)} denial(s) not exportable (kept in the ledger): "
            + escape(", ".join(denied))
        )
    if written:
        _err.print("Review the change and commit it: the CI gate (custody check) reads it.")
