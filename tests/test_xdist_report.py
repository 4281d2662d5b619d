"""``pytest -n 2 --verifier-report DIR``: each xdist worker writes its part, the controller merges them."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("xdist")

CASES = """
defaults:
  dtypes: [float64, float32]
  inputs: {x: [[0.5, -1.25, 2.0], [1.5, -2.5, 0.25]]}
  grad_output: random
cases:
  - {name: x.sin, forward: sin(x)}
  - {name: x.exp, forward: exp(x)}
  - {name: x.tanh, forward: tanh(x)}
  - {name: x.square, forward: x * x}
  - name: x.wrong
    inputs:
      x: [[1.0, 2.0, 3.0], [-1.0, -2.0, 0.5]]
      m: {value: [[0, 1, 0], [0, 0, 1]], requires_grad: false}
    torch: (x**2 + m * x**2).sum()
    sympy: (x**2).sum()
  - name: x.broken
    forward: nosuchfunction(x)
"""


def _pytest(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=900)


def _summary(folder) -> pd.DataFrame:
    frame = pd.read_csv(folder / "summary.csv", keep_default_na=False).drop(columns=["seconds"])
    return frame.sort_values(["case", "dtype"]).reset_index(drop=True)


def test_xdist_workers_parts_merge_into_the_one_process_report(tmp_path):
    (tmp_path / "cases.yaml").write_text(CASES, encoding="utf-8")
    one = _pytest("cases.yaml", "--verifier-report", tmp_path / "one", cwd=tmp_path)
    two = _pytest("cases.yaml", "-n", "2", "--verifier-report", tmp_path / "two", cwd=tmp_path)
    assert one.returncode == two.returncode == 1, two.stdout + two.stderr      # x.wrong fails, x.broken does not load
    assert "2 workers" in two.stdout or "gw1" in two.stdout or "created: 2/2" in two.stdout, two.stdout
    merged, alone = _summary(tmp_path / "two"), _summary(tmp_path / "one")
    assert len(merged) == 10                                   # 5 cases x 2 dtypes; the broken one is a load error
    pd.testing.assert_frame_equal(alone, merged)
    assert set(merged.query("case == 'x.wrong'")["status"]) == {"fail"}
    assert not list((tmp_path / "two").glob(".xdist-*"))      # the parts are gone once merged
    results = (tmp_path / "two" / "results.json").read_text()
    assert results.count("nosuchfunction") >= 1               # the load error, once per merged report
    import json
    assert len(json.loads(results)["load_errors"]) == len(json.loads((tmp_path / "one" / "results.json")
                                                                      .read_text())["load_errors"])
    assert "verifier: 10 case run(s) reported" in two.stdout
