#!/usr/bin/env bash
# Installs everything the tests need (the project in .venv, Verdaccio and devpi in .tools/) and
# runs the whole suite: lint, types, tests. Used by .ci/run. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv >/dev/null 2>&1 || { [ -x .venv/bin/python ] || { echo "error: python3 -m venv failed" >&2; exit 2; }; }
.venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import custody, httpx, sqlalchemy, psycopg' || { echo "error: project install failed" >&2; exit 2; }
bash scripts/install-test-tools.sh

# PostgreSQL: the machines run one on loopback (trust auth, database "test"). Setting the URL
# explicitly makes the PostgreSQL tests fail, not skip, when it is down.
export CUSTODY_TEST_POSTGRES_URL="${CUSTODY_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"

echo "== ruff"; .venv/bin/ruff check src tests benchmarks
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
