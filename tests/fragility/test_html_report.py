"""The HTML report is one self-contained file that a real browser renders with its chart: Debian's
chromium, headless, driven by Playwright with ``executable_path`` (no browser download)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.fragility.packuments import CAPTURED, documents, needs_packuments, package_lock, serve
from tests.support.clients import clean_env, custody

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _require_browser() -> None:
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium; scripts/install-test-tools.sh)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -e '.[test]')")
    if missing:
        message = "missing: " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so a missing test tool is a failure)")
        pytest.skip(message)


@needs_packuments
def test_html_report_renders_its_chart_in_chromium(httpserver: HTTPServer, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import sync_playwright

    docs = documents()
    lock = package_lock(tmp_path / "app", docs)
    env = clean_env(
        tmp_path / "home",
        CUSTODY_NPM_REGISTRY=serve(httpserver, docs),
        CUSTODY_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    )
    report = tmp_path / "radar.html"
    result = custody(
        "fragile",
        str(lock),
        "-f",
        "html",
        "-o",
        str(report),
        "--as-of",
        CAPTURED.isoformat(),
        cwd=tmp_path,
        env=env,
    )
    assert result.code == 0, result.stderr
    html = report.read_text()
    # self-contained: nothing is loaded from anywhere
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.as_uri())
            chart = page.locator("svg#fragility-chart")
            assert chart.count() == 1
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150
            points = page.locator("svg#fragility-chart circle.point")
            assert points.count() == len(docs)
            assert page.locator("#ranking tbody tr").count() == len(docs)
            first = page.locator("#ranking tbody tr").first.inner_text()
            assert "npm:" in first
            # the timelines are there, and a point links to its package's section
            href = page.locator("svg#fragility-chart a").last.get_attribute("href")
            assert href and page.locator(href).count() == 1
            assert page.locator(f"{href} ol.timeline li").count() >= 1
            # the inline script works: sorting by fragility ascending puts a low one first
            page.fill("#filter", "debug-log")
            visible = page.locator("#ranking tbody tr:visible")
            assert visible.count() == 1 and "debug-log" in visible.inner_text()
            assert errors == []
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith("file://")] == []
