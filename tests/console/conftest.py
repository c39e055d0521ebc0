"""A headless Chromium (Debian's, driven by Playwright) for the console's tests.

`.ci/run` installs Chromium when it is missing; elsewhere, without it, the tests are
skipped (in CI, where `CI` is set, they fail instead). A browser per test: Playwright's
sync API runs an event loop in the test's thread while it is open, and the suites that
share this worker process call `asyncio.run`."""

from __future__ import annotations

import gc
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the machine's closed network needs: no calls home, no update checks.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not installed ({CHROMIUM}); .ci/run installs it")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()
    # Playwright closes its event loop before asyncio has noted that the driver process
    # exited, so its Popen (and the pipe's socket) sit in a reference cycle claiming to be
    # alive. Collected later, they warn inside whatever test runs then; collect them here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
