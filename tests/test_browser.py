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


def _cases(wrong: bool, many: int = 0):
    cases = [make_case("browser.square", {"x": [[1.0, 2.0], [3.0, 4.0]]}, forward="(x**2).sum()")]
    cases += [make_case(f"browser.many{i:02d}", {"x": [1.0 + i, 2.0]}, forward=f"(x**{1 + i % 3}).sum()")
              for i in range(many)]
    if wrong:
        cases.append(make_case("browser.wrong", {"x": [[1.0, -2.0], [0.5, 3.0]]},
                               torch="(2 * x**2).sum()", sympy="(x**2).sum()"))
        cases.append(make_case("browser.broken", {"x": [1.0, 2.0]}, forward="x.reshape(3)"))
    return cases


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two real reports: one with a failing case, one where everything passes."""
    base = tmp_path_factory.mktemp("browser")
    runner = Runner()
    for label, wrong, many in (("mixed", True, 0), ("passing", False, 0), ("long", True, 40)):
        results = [runner.run(case, "float64") for case in _cases(wrong, many)]
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
    # the wrong case's two sides; the passing case is exact everywhere, so its map would be blank and is left
    # out (html_report.PASSING_MAP_RATIO); an errored case has none
    assert sum(src.startswith("data:image/png;base64,") for src in dom.images) == 2
    mixed = _count(_pixels(tmp_path, reports / "mixed" / "report.html", "mixed-maps"), FAR_OUTSIDE)
    passing = _count(_pixels(tmp_path, reports / "passing" / "report.html", "passing-maps"), FAR_OUTSIDE)
    # the legend's red end is in both; the wrong case adds 4 elements drawn as 16 x 16 px cells
    assert mixed - passing >= 4 * 16 * 16, (mixed, passing)


PROBE = """<script>
window.addEventListener("load", function () {
  var h = document.documentElement, first = document.querySelector("#T_not-passing tbody tr");
  function names(rows) {
    return Array.prototype.filter.call(rows, function (r) { return !r.hidden; })
      .map(function (r) { return r.cells[0].textContent; }).join("|");
  }
  h.setAttribute("data-first-bottom", first ? Math.round(first.getBoundingClientRect().bottom) : -1);
  h.setAttribute("data-height", window.innerHeight);
  h.setAttribute("data-not-passing", names(document.querySelectorAll("#T_not-passing tbody tr")));
  h.setAttribute("data-open", Array.prototype.filter.call(document.querySelectorAll("details.case"),
    function (d) { return d.open; }).map(function (d) { return d.id; }).join("|"));
  var status = document.getElementById("filter-status");
  status.value = "error"; status.dispatchEvent(new Event("change"));
  h.setAttribute("data-errors", names(document.querySelectorAll("#T_cases tbody tr")));
  status.value = ""; status.dispatchEvent(new Event("change"));
  var text = document.getElementById("filter-text");
  text.value = "many0"; text.dispatchEvent(new Event("input"));
  h.setAttribute("data-text", names(document.querySelectorAll("#T_cases tbody tr")));
  text.value = ""; text.dispatchEvent(new Event("input"));
  var th = Array.prototype.filter.call(document.querySelectorAll("#T_cases th"),
    function (t) { return t.textContent === "worst_ratio"; })[0];
  th.click();
  h.setAttribute("data-sorted", names(document.querySelectorAll("#T_cases tbody tr")));
});
</script>"""


def _probe(tmp_path, report) -> dict:
    """The page with PROBE added, loaded in the browser at 1280 x 800: what PROBE wrote on <html>."""
    import re

    page = tmp_path / "probe.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _browser(tmp_path, "--window-size=1280,800", "--dump-dom", page=page).stdout
    head = dom[:dom.index(">", dom.index("<html")) + 1]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', head))


def test_the_first_screen_shows_what_did_not_pass(reports, tmp_path):
    """Forty passing cases before the failing ones: the not-passing table still comes first, in view."""
    seen = _probe(tmp_path, reports / "long" / "report.html")
    assert seen["not-passing"] == "browser.wrong|browser.broken"        # the errored case is listed too
    assert 0 < int(seen["first-bottom"]) <= int(seen["height"])
    assert seen["open"] == "case-browser-wrong-float64|case-browser-broken-float64"   # passing ones collapsed


def test_the_case_table_filters_and_sorts(reports, tmp_path):
    seen = _probe(tmp_path, reports / "long" / "report.html")
    assert seen["errors"] == "browser.broken"
    assert seen["text"] == "|".join(f"browser.many{i:02d}" for i in range(10))
    order = seen["sorted"].split("|")
    assert order[0] == "browser.wrong" and order[-1] == "browser.broken"    # largest ratio first, no number last
    assert len(order) == 43


def test_status_counts_link_to_the_tables(reports, tmp_path):
    dom = _dom(tmp_path, reports / "mixed" / "report.html")
    assert {"not-passing", "cases"} <= set(dom.links) <= dom.ids | {t for t in dom.links if t.startswith("case-")}
