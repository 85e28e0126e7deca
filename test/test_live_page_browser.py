"""The live page in a real browser: Debian's chromium driven by playwright (no browser download: playwright's
own installer cannot reach its CDN here), loading the page of a daemon subprocess that reduces a fake SMS's
stream. The page must show the run the SMS is sending and a spectrum with counts in it; the screenshot is saved
as a test artifact ($LIVEREDUCE_ARTIFACTS, else the test's temporary directory).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from daemon_helpers import DaemonProcess

from livereduce.servers.adara import FakeSMS

FIRST_RUN = 4711  # the run number the page must show: the fake SMS's, not one the daemon makes up


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium; scripts/test installs it as root)")


def test_the_live_page_shows_the_run_and_a_spectrum_with_counts(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    browser_path = chromium()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_PG3_live_proc.py").write_text(
        "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='0,500,20000', PreserveEvents=False)\n"
    )
    sms = FakeSMS(
        port=0, rate=20_000, run_seconds=600, runs=1, first_run=FIRST_RUN, instrument="POWGEN", seed=5
    )
    port = sms.start()
    daemon = DaemonProcess(
        tmp_path,
        {
            "instrument": "POWGEN",
            "address": f"127.0.0.1:{port}",
            "script_dir": str(scripts),
            "update_every": 1,
            "accum_method": "Add",
            "system_mem_limit_perc": 0,
        },
    )
    artifacts = Path(os.environ.get("LIVEREDUCE_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    try:
        log = daemon.wait_for("status page at ", timeout=30)
        url = re.search(r"status page at (http://\S+/) ", log).group(1)
        daemon.wait_for(f"cycle 3: run {FIRST_RUN}", timeout=60)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                page.wait_for_function(
                    "() => { const d = document.getElementById('spectra').data;"
                    " return d && d.length && d[0].y.some((v) => v > 0); }",
                    timeout=30_000,
                )
                page.wait_for_function(
                    f"() => document.getElementById('run').textContent === '{FIRST_RUN}'", timeout=30_000
                )
                # the x axis is labelled with its unit, and pushes keep coming (the cycle number moves on)
                assert "Time-of-flight (us)" in page.inner_text("#spectra")
                first = int(page.inner_text("#cycle").replace(",", ""))
                page.wait_for_function(
                    f"() => parseInt(document.getElementById('cycle').textContent.replace(/,/g, '')) > {first}",
                    timeout=30_000,
                )
                assert page.inner_text("#connected") == "connected"
                assert page.is_hidden("#error")
                total = page.evaluate(
                    "() => document.getElementById('spectra').data.reduce("
                    "(n, c) => n + c.y.reduce((a, b) => a + (b || 0), 0), 0)"
                )
                assert total > 0
                deadline = time.monotonic() + 20
                while not page.evaluate("() => (document.getElementById('rates').data || []).length"):
                    assert time.monotonic() < deadline, "no events/s plot"
                    page.wait_for_timeout(200)
                page.screenshot(path=str(artifacts / "live-page.png"), full_page=True)
            finally:
                browser.close()
    finally:
        daemon.stop()
        sms.stop()
    assert (artifacts / "live-page.png").stat().st_size > 10_000
