"""The HTML report opens in headless Chromium (Debian's package) with no server, and its
screenshot shows the timeline: node-state bars, a node down in red among running green."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_html_report_shows_its_timeline_in_a_browser(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    report = tmp_path / "report"
    run = subprocess.run(
        [sys.executable, "-m", "scenarios.cli", "run", "-k", "cluster.rolling-restart",
         "--report", str(report)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
         f"--screenshot={shot}", (report / "index.html").as_uri()],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[300:, :, :3]  # below the title, legend and table
    red = ((abs(pixels[..., 0] - 0xD9 / 255) < 0.04) & (abs(pixels[..., 1] - 0x53 / 255) < 0.04)
           & (abs(pixels[..., 2] - 0x4F / 255) < 0.04)).sum()  # fmt: skip
    green = ((abs(pixels[..., 0] - 0x6A / 255) < 0.04) & (abs(pixels[..., 1] - 0xBF / 255) < 0.04)
             & (abs(pixels[..., 2] - 0x69 / 255) < 0.04)).sum()  # fmt: skip
    assert red > 1_000 and green > 5 * red, (green, red)  # three outages among running nodes
