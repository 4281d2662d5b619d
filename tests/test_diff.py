"""`verifier diff` on two report folders written by real `verifier run`s."""

from __future__ import annotations

import json

import pandas as pd
import pytest

# The same case names in both runs; what each torch side computes differs between them.
OLD = """
cases:
  - name: d.stable
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: d.regress
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: d.fixed
    inputs: {x: [1.0, 2.0]}
    torch: (2 * x**2).sum()
    sympy: (x**2).sum()
  - name: d.worse
    inputs: {x: [1.0, 2.0]}
    forward: (3 * x).sum()
  - name: d.to_error
    inputs: {x: [1.0, 2.0]}
    torch: (2 * x**2).sum()
    sympy: (x**2).sum()
  - name: d.removed
    inputs: {x: [1.0, 2.0]}
    forward: x.sum()
"""

NEW = """
cases:
  - name: d.stable
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: d.regress
    inputs: {x: [1.0, 2.0]}
    torch: (2 * x**2).sum()
    sympy: (x**2).sum()
  - name: d.fixed
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: d.worse
    description: still within float64's tolerance (relative 1e-11 < 4e-11), but far from exact
    inputs: {x: [1.0, 2.0]}
    torch: (3.00000000003 * x).sum()
    sympy: (3 * x).sum()
  - name: d.to_error
    inputs: {x: [1.0, 2.0], y: [1.0, 2.0, 3.0]}
    forward: (x * y).sum()
  - name: d.added
    inputs: {x: [1.0, 2.0]}
    forward: x.sum()
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two real report folders: `verifier run` of OLD and of NEW."""
    import subprocess
    import sys
    import textwrap
    base = tmp_path_factory.mktemp("diff")
    for label, text in (("old", OLD), ("new", NEW)):
        (base / f"{label}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        out = subprocess.run([sys.executable, "-m", "verifier", "run", str(base / f"{label}.yaml"),
                              "--report-dir", str(base / label), "--no-progress"],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 1, out.stdout + out.stderr      # each run has a failing case
    return base


def test_diff_names_every_change(cli, reports):
    out = cli("diff", reports / "old", reports / "new", "--output", reports / "d1")
    assert out.returncode == 1, out.stderr                        # d.regress regressed
    diff = pd.read_csv(reports / "d1" / "diff.csv").set_index("case")
    assert diff["change"].to_dict() == {
        "d.regress": "regressed", "d.fixed": "fixed", "d.to_error": "status changed",
        "d.added": "added", "d.removed": "removed", "d.worse": "worse", "d.stable": "same"}
    assert list(diff.index[:5]) == ["d.regress", "d.fixed", "d.to_error", "d.added", "d.removed"]
    assert diff.loc["d.to_error", "old_status"] == "fail" and diff.loc["d.to_error", "new_status"] == "error"
    # 3.00000000003 vs 3: relative error 1e-11, against 0 (floored at eps 2.2e-16) before
    assert diff.loc["d.worse", "new_max_rel_err"] == pytest.approx(1e-11, rel=1e-3)
    assert diff.loc["d.worse", "error_factor"] == pytest.approx(1e-11 / 2.220446049250313e-16, rel=1e-3)
    assert diff.loc["d.stable", "error_factor"] == 1.0


def test_terminal_table_lists_status_and_error_changes(cli, reports):
    out = cli("diff", reports / "old", reports / "new", "-o", reports / "d2")
    text = out.stdout
    assert "7 case runs: 1 regressed, 1 fixed, 1 other status changes, 1 added, 1 removed, 1 worse" in text
    status_part = text.split("Status changes:")[1].split("Largest error changes")[0]
    assert "d.regress" in status_part and "regressed" in status_part and "d.stable" not in status_part
    error_part = text.split("Largest error changes (max relative error, new / old):")[1]
    first = error_part.strip().splitlines()[1]
    assert first.split()[:3] in (["d.regress", "float64", "regressed"], ["d.fixed", "float64", "fixed"],
                                 ["d.worse", "float64", "worse"])
    assert "wrote" in text and "diff.html" in text


def test_html_highlights_and_links_into_the_new_report(cli, reports):
    cli("diff", reports / "old", reports / "new")                  # default: into the new folder
    html = (reports / "new" / "diff.html").read_text()
    assert '<tr class="regressed">' in html and '<tr class="fixed">' in html
    assert 'href="report.html#case-d-regress-float64"' in html
    assert 'id="case-d-regress-float64"' in (reports / "new" / "report.html").read_text()


def test_environment_changes_are_shown(cli, reports, tmp_path):
    # another torch build: the same report with the version recorded differently
    import shutil
    other = tmp_path / "other-torch"
    shutil.copytree(reports / "old", other)
    env = json.loads((other / "environment.json").read_text())
    env["torch"] = "2.0.0+cpu"
    (other / "environment.json").write_text(json.dumps(env))
    out = cli("diff", other, reports / "new", "-o", tmp_path / "out")
    assert f"environment: torch 2.0.0+cpu -> {json.loads((reports / 'new' / 'environment.json').read_text())['torch']}" \
        in out.stdout
    assert "<th>what</th>" in (tmp_path / "out" / "diff.html").read_text()


@pytest.mark.parametrize("make, message", [
    pytest.param(lambda d: None, "has no summary.csv", id="empty-folder"),
    pytest.param(lambda d: (d / "summary.csv").write_text("a,b\n1,2\n"), "lacks the column(s) case, dtype, status",
                 id="not-a-summary"),
])
def test_a_folder_that_is_not_a_report_is_a_usage_error(cli, reports, tmp_path, make, message):
    bad = tmp_path / "bad"
    bad.mkdir()
    make(bad)
    out = cli("diff", bad, reports / "new", "-o", tmp_path / "o")
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
