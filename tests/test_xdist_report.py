"""``pytest -n 2 --verifier-report DIR``: each xdist worker writes its part, the controller merges them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("xdist")

# the cases the shard test splits, and one that does not load
CASES = (Path(__file__).parent / "data" / "shards.yaml.in").read_text(encoding="utf-8") + """
  - name: shard.broken
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
    assert one.returncode == two.returncode == 1, two.stdout + two.stderr      # shard.wrong fails, shard.broken does not load
    assert "2 workers" in two.stdout or "gw1" in two.stdout or "created: 2/2" in two.stdout, two.stdout
    merged, alone = _summary(tmp_path / "two"), _summary(tmp_path / "one")
    assert len(merged) == 14                                   # 7 cases x 2 dtypes; the broken one is a load error
    pd.testing.assert_frame_equal(alone, merged)
    assert set(merged.query("case == 'shard.wrong'")["status"]) == {"fail"}
    assert not list((tmp_path / "two").glob(".xdist-*"))      # the parts are gone once merged
    results = (tmp_path / "two" / "results.json").read_text()
    assert results.count("nosuchfunction") >= 1               # the load error, once per merged report
    import json
    assert len(json.loads(results)["load_errors"]) == len(json.loads((tmp_path / "one" / "results.json")
                                                                      .read_text())["load_errors"])
    assert "verifier: 14 case run(s) reported" in two.stdout
