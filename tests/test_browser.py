"""report.html in a real headless browser: its text, its links, what a reader sees.

Needs Chromium (Debian's `chromium` package; `.ci/run` installs it). Without
a browser these tests are skipped and say so.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from verifier import Runner, make_case
from verifier.report.heatmap import FAIL_STOPS
from verifier.report.writing import write_reports

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for path in map(shutil.which, BROWSERS) if path), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser found (looked for chromium, chromium-browser, google-chrome); "
                            "install Debian's chromium (`apt-get install chromium`), as .ci/run does")

FAILED_ROW = (0xF8, 0xD0, 0xD0)      # report.py's background for a failing row
FAR_OUTSIDE = FAIL_STOPS[-1][1]      # heat-map colour of an error >= 1000x what is allowed
WINDOW = "1280,3000"


def _cases(wrong: bool):
    cases = [make_case("browser.square", {"x": [[1.0, 2.0], [3.0, 4.0]]}, forward="(x**2).sum()")]
    if wrong:
        cases.append(make_case("browser.wrong", {"x": [[1.0, -2.0], [0.5, 3.0]]},
                               torch="(2 * x**2).sum()", sympy="(x**2).sum()"))
    return cases


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two real reports: one with a failing case, one where everything passes."""
    base = tmp_path_factory.mktemp("browser")
    runner = Runner()
    for label, wrong in (("mixed", True), ("passing", False)):
        results = [runner.run(case, "float64") for case in _cases(wrong)]
        write_reports(results, base / label, command=f"test_browser {label}")
    return base


def _browser(tmp_path, *args: str, page) -> subprocess.CompletedProcess:
    out = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--hide-scrollbars", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                          *args, page.as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


class _Page(HTMLParser):
    """The rendered DOM's text, element ids and in-page links."""

    def __init__(self) -> None:
        super().__init__()
        self.text, self.ids, self.links, self.images = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_data(self, data):
        self.text.append(data)


def _dom(tmp_path, page) -> _Page:
    parsed = _Page()
    parsed.feed(_browser(tmp_path, "--dump-dom", page=page).stdout)
    return parsed


def _pixels(tmp_path, page, name) -> np.ndarray:
    shot = tmp_path / f"{name}.png"
    _browser(tmp_path, f"--screenshot={shot}", f"--window-size={WINDOW}", page=page)
    return np.asarray(Image.open(shot).convert("RGB")).astype(int)


def _count(pixels: np.ndarray, rgb) -> int:
    return int(np.all(np.abs(pixels - np.array(rgb)) <= 3, axis=-1).sum())


def test_the_page_says_what_ran(reports, tmp_path):
    dom = _dom(tmp_path, reports / "mixed" / "report.html")
    text = " ".join(" ".join(dom.text).split())
    for expected in ("Gradient verification report", "1 passed", "1 failed", "Environment", "torch",
                     "browser.square", "browser.wrong", "mismatched elements: 4 / 4 (100%)", "Heat maps"):
        assert expected in text, expected


def test_every_case_links_to_its_details(reports, tmp_path):
    dom = _dom(tmp_path, reports / "mixed" / "report.html")
    assert {"case-browser-square-float64", "case-browser-wrong-float64"} <= set(dom.links)
    missing = [target for target in dom.links if target not in dom.ids]
    assert not missing, f"links without a target: {missing}"


def test_failing_rows_are_visibly_highlighted(reports, tmp_path):
    mixed = _count(_pixels(tmp_path, reports / "mixed" / "report.html", "mixed"), FAILED_ROW)
    passing = _count(_pixels(tmp_path, reports / "passing" / "report.html", "passing"), FAILED_ROW)
    # the "0 failed" badge has that colour too; a highlighted row adds at least a row's worth of pixels
    assert mixed - passing > 5000, (mixed, passing)


def test_heat_maps_show_the_failing_elements(reports, tmp_path):
    dom = _dom(tmp_path, reports / "mixed" / "report.html")
    assert sum(src.startswith("data:image/png;base64,") for src in dom.images) == 4   # 2 cases x 2 sides
    mixed = _count(_pixels(tmp_path, reports / "mixed" / "report.html", "mixed-maps"), FAR_OUTSIDE)
    passing = _count(_pixels(tmp_path, reports / "passing" / "report.html", "passing-maps"), FAR_OUTSIDE)
    # the legend's red end is in both; the wrong case adds 4 elements drawn as 16 x 16 px cells
    assert mixed - passing >= 4 * 16 * 16, (mixed, passing)
