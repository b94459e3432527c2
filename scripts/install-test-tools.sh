#!/usr/bin/env bash
# Install the real registry servers the tests start on loopback, into .tools/ (gitignored):
#   .tools/node/         Verdaccio (npm registry) from a package.json written here
#   .tools/devpi-venv/   devpi-server + devpi-client (PyPI registry), in their own venv so their
#                        dependencies never mix with the project's
#   /usr/bin/chromium    Debian's chromium (as root with apt-get only), for the HTML report test
# Idempotent: a stamp file per tool records what was installed; when it matches, nothing runs.
# Environment: PYTHON (interpreter for the devpi venv, default python3), FORCE=1 to reinstall.
set -euo pipefail

VERDACCIO_SPEC="~6.8.0"
NODE_FETCH_OVERRIDE="2.7.0"
DEVPI_SPECS=("devpi-server>=6.10,<7" "devpi-client>=7,<8")
PYTHON="${PYTHON:-python3}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$repo/.tools"
node_dir="$tools/node"
devpi_venv="$tools/devpi-venv"

say() { printf 'install-test-tools: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

require() {
  local cmd="$1" why="$2"
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found on PATH: $why"
}

# Prints the stamp for the current wanted state; a change of spec or runtime reinstalls.
node_stamp() {
  printf 'verdaccio=%s node-fetch=%s node=%s\n' \
    "$VERDACCIO_SPEC" "$NODE_FETCH_OVERRIDE" "$(node --version)"
}

devpi_stamp() {
  printf 'specs=%s python=%s\n' "${DEVPI_SPECS[*]}" "$("$PYTHON" -c 'import sys; print(sys.version)')"
}

up_to_date() {
  local stamp_file="$1" wanted="$2" binary="$3"
  [[ "${FORCE:-0}" != 1 && -x "$binary" && -f "$stamp_file" ]] &&
    [[ "$(cat "$stamp_file")" == "$wanted" ]]
}

install_verdaccio() {
  require node "Node.js 20 is needed to run Verdaccio (e.g. apt-get install nodejs)"
  require npm "npm is needed to install Verdaccio (e.g. apt-get install npm)"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [[ "$major" -ge 18 ]] || die "Node.js >= 18 is needed for Verdaccio 6 (found $(node --version))"

  local wanted stamp_file="$node_dir/.installed"
  wanted="$(node_stamp)"
  if up_to_date "$stamp_file" "$wanted" "$node_dir/node_modules/.bin/verdaccio"; then
    say "verdaccio: up to date ($node_dir)"
    return
  fi
  say "verdaccio: installing $VERDACCIO_SPEC into $node_dir"
  mkdir -p "$node_dir"
  cat >"$node_dir/package.json" <<EOF
{
  "name": "custody-test-tools",
  "private": true,
  "description": "Registry servers for Custody's tests; written by scripts/install-test-tools.sh",
  "dependencies": { "verdaccio": "$VERDACCIO_SPEC" },
  "overrides": { "node-fetch": "$NODE_FETCH_OVERRIDE" }
}
EOF
  (cd "$node_dir" && npm install --no-audit --no-fund --omit=dev --loglevel=error)
  [[ -x "$node_dir/node_modules/.bin/verdaccio" ]] || die "verdaccio binary missing after npm install"
  printf '%s' "$wanted" >"$stamp_file"
}

install_devpi() {
  require "$PYTHON" "a Python 3 interpreter is needed for the devpi venv (set PYTHON=...)"
  local wanted stamp_file="$devpi_venv/.installed"
  wanted="$(devpi_stamp)"
  if up_to_date "$stamp_file" "$wanted" "$devpi_venv/bin/devpi-server"; then
    say "devpi: up to date ($devpi_venv)"
    return
  fi
  say "devpi: installing ${DEVPI_SPECS[*]} into $devpi_venv"
  rm -rf "$devpi_venv"
  "$PYTHON" -m venv "$devpi_venv" || die "'$PYTHON -m venv' failed (is the venv module installed?)"
  # Default pip behaviour on purpose: the machine's pip configuration decides where packages come from.
  # -qq hides the warnings that machine-wide extra indexes print for every package.
  "$devpi_venv/bin/python" -m pip install -qq "${DEVPI_SPECS[@]}"
  for bin in devpi-init devpi-server devpi; do
    [[ -x "$devpi_venv/bin/$bin" ]] || die "$bin missing after pip install"
  done
  printf '%s' "$wanted" >"$stamp_file"
}

# Debian's chromium for the HTML report test (Playwright drives it with executable_path; no
# browser is ever downloaded by Playwright). Installed only as root with apt-get; otherwise the
# test skips (or fails under CI) and says what is missing.
install_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    say "chromium: present (/usr/bin/chromium)"
    return
  fi
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "chromium: missing and not root with apt-get: install Debian's chromium package yourself"
    return
  fi
  say "chromium: installing Debian's chromium package"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  [[ -x /usr/bin/chromium ]] || die "chromium missing after apt-get install"
}

main() {
  mkdir -p "$tools"
  install_verdaccio
  install_devpi
  install_chromium
  local verdaccio_version devpi_version
  verdaccio_version="$(cd "$node_dir" && node -p 'require("verdaccio/package.json").version')"
  devpi_version="$("$devpi_venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("devpi-server"))')"
  say "ready: verdaccio $verdaccio_version, devpi-server $devpi_version (in $tools)"
}

main "$@"
