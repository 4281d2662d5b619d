"""Details that scale: a result keeps its summary numbers over every element, but only the rows worth reading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from verifier import Runner, make_case
from verifier.report import tables
from verifier.run import digest

N = 400
WRONG_AT = (7, 123, 301)


def wrong_backward(x, m):
    """sin(x)·x summed; its forward is right, its backward adds m·x (wrong where m ≠ 0)."""
    return (x.sin() * x).sum() + ((x - x.detach()) * x.detach() * m).sum()


def _result(wrong: bool):
    """x of N elements; with ``wrong`` torch's backward is off by ~1e-3 relative at WRONG_AT only."""
    mask = [1e-3 if i in WRONG_AT and wrong else 0.0 for i in range(N)]
    case = make_case("digest.case", {"x": {"shape": [N], "sample": "normal", "seed": 5},
                                     "m": {"value": mask, "requires_grad": False}},
                     torch=wrong_backward, sympy="(sin(x) * x + 0 * m).sum()")
    return Runner(forward_mode=False, second_order=False).run(case, "float64")


def _frozen(summary: pd.DataFrame) -> dict:
    # NaN (cross_device_max_abs_err of a CPU run) as None: two NaNs are never == in a dict comparison
    record = summary.drop(columns=["seconds"]).to_dict("records")[0]
    return {k: None if isinstance(v, float) and v != v else v for k, v in record.items()}


def test_a_wrong_gradient_keeps_every_mismatch_and_the_same_summary():
    whole = _result(wrong=True)
    assert whole.status == "fail", whole.message
    before = _frozen(tables.summary([whole]))
    digested = _result(wrong=True)
    digest.apply(digested, digest.DetailPolicy(keep=5))
    rows = digested.rows
    bad = rows[~rows["ok"].astype(bool)]
    assert sorted(int(i.strip("(,)")) for i in bad["index"]) == list(WRONG_AT)
    assert len(rows) == 5                 # the 5 worst, the 3 wrong ones among them
    after = _frozen(tables.summary([digested]))
    assert after["status"] == "fail" and after["mismatched"] == len(WRONG_AT) == before["mismatched"]
    assert after == before          # maxima, counts, who is wrong: all over every element, not the kept rows
    assert after["who_wrong"] == "autograd (FD agrees with exact)"


def test_a_right_gradient_keeps_only_its_worst_rows():
    result = _result(wrong=False)
    assert result.status == "pass", result.message
    before = _frozen(tables.summary([result]))
    digest.apply(result, digest.DetailPolicy(keep=4))
    assert len(result.rows) == 4 and result.rows["ok"].all()
    worst = np.max(result.rows["abs_err"] / result.rows["tolerance"])
    assert worst == pytest.approx(before["worst_ratio"])
    assert _frozen(tables.summary([result])) == before and before["elements"] == N


def test_failing_keeps_only_flagged_rows_and_all_keeps_everything():
    failing = _result(wrong=True)
    digest.apply(failing, digest.DetailPolicy.parse("failing"))
    assert len(failing.rows) == len(WRONG_AT)
    everything = _result(wrong=True)
    digest.apply(everything, digest.DetailPolicy.parse("all"))
    assert len(everything.rows) == N


def test_the_csv_of_undigested_results_is_reduced_too():
    results = [_result(wrong=True), _result(wrong=False)]
    detail = tables.details(results, keep=2)
    # the wrong result: its 3 mismatches (its 2 worst are among them); the right one: its 2 worst
    assert len(detail) == len(WRONG_AT) + 2
    assert (~detail["ok"].astype(bool)).sum() == len(WRONG_AT)
    assert len(tables.details(results)) == 2 * N                # keep=None: every row the results hold


@pytest.mark.parametrize("text, keep", [("all", None), ("failing", 0), ("20", 20), (" 3 ", 3)])
def test_details_option(text, keep):
    assert digest.DetailPolicy.parse(text).keep == keep


@pytest.mark.parametrize("text", ["some", "-1", "2.5", ""])
def test_details_option_refuses_nonsense(text):
    with pytest.raises(ValueError, match="'all', 'failing' or a number"):
        digest.DetailPolicy.parse(text)


def test_large_results_drop_their_per_element_sides(monkeypatch):
    small = _result(wrong=False)
    digest.apply(small, digest.DetailPolicy())
    assert small.exact is not None and small.autograd is not None      # N <= SIDES_KEPT_UP_TO: derivation shown
    monkeypatch.setattr(digest, "SIDES_KEPT_UP_TO", N - 1)
    case = _result(wrong=False).case
    large = Runner().run(case, "float64")                               # with the forward-mode check
    assert large.forward_mode.torch is not None
    method = large.fd.method
    digest.apply(large, digest.DetailPolicy())
    assert large.exact is None and large.autograd is None and large.fd.method == method
    assert large.forward_mode.torch is None and large.forward_mode.status == "pass"
    assert tables.summary([large]).loc[0, "fd_method"] == method
