"""``verifier run --shard K/N`` and ``verifier merge``: the shards of a run, merged, are that run's report."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from verifier.errors import VerifierError
from verifier.report.merge import merge
from verifier.run.shard import parse_shard, partition

CASES = Path(__file__).parent / "data" / "shards.yaml.in"   # not .yaml: the plugin would collect it in this suite


@pytest.fixture
def case_file(tmp_path):
    path = tmp_path / "shards.yaml"
    path.write_text(CASES.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def _summary(folder) -> pd.DataFrame:
    """status, message and numbers per case × dtype (timings left out), in file order."""
    frame = pd.read_csv(folder / "summary.csv", keep_default_na=False, na_values=[""])
    return frame.drop(columns=["seconds"])


# --- the deal ----------------------------------------------------------------------------------------------

def test_partition_covers_every_case_once_and_balances_counts():
    names = [f"case.{i}" for i in range(103)]
    shards = partition({n: 1.0 for n in names}, 3)
    assert sorted(sum(shards, [])) == sorted(names)              # every case, none twice
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_partition_is_stable_whatever_the_order_cases_arrive_in():
    names = [f"op.{i}" for i in range(40)]
    costs = {n: float(i % 7 + 1) for i, n in enumerate(names)}
    shuffled = list(costs.items())
    random.Random(4).shuffle(shuffled)
    assert partition(costs, 4) == partition(dict(shuffled), 4)


def test_partition_by_measured_cost_gives_an_expensive_case_a_shard_of_its_own():
    costs = {"huge": 100.0, **{f"small.{i}": 1.0 for i in range(20)}}
    shards = partition(costs, 2)
    alone = next(s for s in shards if "huge" in s)
    assert alone == ["huge"]
    totals = sorted(sum(costs[n] for n in s) for s in shards)
    assert totals == [20.0, 100.0]


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2"])
def test_a_shard_outside_1_to_n_is_a_usage_error(text):
    with pytest.raises(argparse.ArgumentTypeError, match="1 <= K <= N"):
        parse_shard(text)


# --- shards, then merge ----------------------------------------------------------------------------------

def test_three_shards_merged_equal_one_run_and_keep_the_planted_failure(cli, case_file, tmp_path):
    one = cli("run", case_file, "--report-dir", tmp_path / "one", "--jobs", "0", "--no-progress")
    assert one.returncode == 1, one.stderr              # shard.wrong fails
    shard_cases = []
    for k in (1, 2, 3):
        part = cli("run", case_file, "--report-dir", tmp_path / f"s{k}", "--jobs", "0", "--no-progress",
                   "--shard", f"{k}/3")
        assert part.returncode in (0, 1), part.stderr
        shard_cases.append(set(_summary(tmp_path / f"s{k}")["case"]))
    assert sum(len(s) for s in shard_cases) == len(set.union(*shard_cases)) == 7    # disjoint, all there
    merged = cli("merge", *(tmp_path / f"s{k}" for k in (1, 2, 3)), "-o", tmp_path / "merged",
                 "--junit-xml", tmp_path / "merged" / "junit.xml")
    assert merged.returncode == 1, merged.stderr        # a failing case fails the merge too
    pd.testing.assert_frame_equal(_summary(tmp_path / "one"), _summary(tmp_path / "merged"))
    for name in ("details.csv", "checks.csv", "summary.md"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "merged" / name).read_text(), name
    wrong = _summary(tmp_path / "merged").query("case == 'shard.wrong'")
    assert set(wrong["status"]) == {"fail"} and all(wrong["who_wrong"] != "")
    results = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert results["counts"] == json.loads((tmp_path / "one" / "results.json").read_text())["counts"]
    junit = (tmp_path / "merged" / "junit.xml").read_text()
    assert junit.count("<testcase") == 14 and "shard.wrong[float64]" in junit and "<failure" in junit
    html = (tmp_path / "merged" / "report.html").read_text()
    assert "shard.wrong" in html and "shard.sigmoid" in html


@pytest.fixture
def shards(cli, case_file, tmp_path):
    for k in (1, 2):
        cli("run", case_file, "--report-dir", tmp_path / f"p{k}", "--jobs", "0", "--no-progress", "-k",
            "sin or exp or square", "--dtype", "float64", "--shard", f"{k}/2")
    return tmp_path / "p1", tmp_path / "p2"


def test_merge_refuses_overlap_missing_shards_and_mixed_environments(shards, tmp_path, cli):
    p1, p2 = shards
    with pytest.raises(VerifierError, match="in both"):
        merge([p1, p2, p1], tmp_path / "m")
    with pytest.raises(VerifierError, match="shard\\(s\\) 2/2 missing"):
        merge([p1], tmp_path / "m")
    paths, results, _ = merge([p1], tmp_path / "m", allow_partial=True)
    assert len(results) == len(_summary(p1))
    env = json.loads((p2 / "environment.json").read_text())
    env["torch"] = "0.0.1-elsewhere"
    (p2 / "environment.json").write_text(json.dumps(env))
    with pytest.raises(VerifierError, match="different environments.*torch"):
        merge([p1, p2], tmp_path / "m")
    paths, results, _ = merge([p1, p2], tmp_path / "m", allow_mixed=True)
    merged_env = json.loads((tmp_path / "m" / "environment.json").read_text())
    assert "0.0.1-elsewhere" in merged_env["torch"] and " | " in merged_env["torch"]
    out = cli("merge", p1, p2, "-o", tmp_path / "m2")         # the CLI says what to do, no traceback
    assert out.returncode == 2 and "--allow-mixed" in out.stderr and "Traceback" not in out.stderr
    # a part whose case file did not load: its cases never ran, so the merge must not exit 0
    doc = json.loads((p1 / "results.json").read_text())
    doc["load_errors"] = ["shards.yaml:9: case 'x': unknown function 'nosuch'"]
    (p1 / "results.json").write_text(json.dumps(doc))
    out = cli("merge", p1, p2, "-o", tmp_path / "m3", "--allow-mixed")
    assert out.returncode == 2 and "load_errors" in out.stderr
    assert json.loads((tmp_path / "m3" / "results.json").read_text())["load_errors"] == doc["load_errors"]


def test_merge_refuses_a_folder_that_is_not_a_whole_report(shards, tmp_path, cli):
    p1, p2 = shards
    out = cli("merge", tmp_path, "-o", tmp_path / "m")
    assert out.returncode == 2 and "summary.csv" in out.stderr and "Traceback" not in out.stderr
    (p2 / "results.json").write_text("{not json")
    with pytest.raises(VerifierError, match="not a whole report folder"):
        merge([p1, p2], tmp_path / "m")


def test_a_tampered_part_cannot_turn_a_failure_into_a_pass(case_file, cli, tmp_path):
    """results.json and summary.csv must agree: a part whose files disagree is refused, not merged."""
    cli("run", case_file, "--report-dir", tmp_path / "w", "--jobs", "0", "--no-progress", "-k", "wrong",
        "--dtype", "float64")
    doc = json.loads((tmp_path / "w" / "results.json").read_text())
    doc["results"] = doc["results"][:0]
    (tmp_path / "w" / "results.json").write_text(json.dumps(doc))
    with pytest.raises(VerifierError, match="two runs"):
        merge([tmp_path / "w"], tmp_path / "m")


def test_shard_costs_from_a_previous_report_balance_by_seconds(tmp_path):
    from verifier import make_case
    from verifier.run.shard import read_costs, select

    pd.DataFrame({"case": ["a", "a", "b", "c"], "seconds": [5.0, 5.0, 1.0, 1.0]}).to_csv(tmp_path / "summary.csv",
                                                                                       index=False)
    assert read_costs(str(tmp_path)) == {"a": 10.0, "b": 1.0, "c": 1.0}
    cases = [make_case(n, {"x": [1.0]}, torch="sin(x)", sympy="sin(x)") for n in ("a", "b", "c", "d")]
    parts = [select(cases, (k, 2), str(tmp_path)) for k in (1, 2)]
    heavy = next(p for p in parts if any(c.name == "a" for c in p))
    assert [c.name for c in heavy] == ["a"]                      # b, c and d (median cost) share the other
    with pytest.raises(VerifierError, match="--shard-costs"):
        read_costs(str(tmp_path / "nowhere"))
