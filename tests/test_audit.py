"""``verifier audit``: torch's OpInfo samples against the exact reference, and its per-op table.

The runs here are in-process (``jobs=0``) on a few ops with one sample each. A
planted wrong backward, given to the audit through its op list, must be
reported fail next to the right one passing; a wrapper that reorders the
arguments must be unsupported (with its reason), never a false alarm.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch
from wrong_backward import wrong_tanh

from verifier.audit import opdb
from verifier.audit.sweep import run_audit
from verifier.audit.table import COLUMNS, per_op, totals, write
from verifier.cli import main


def fake_op(name, fn, *samples, variant=""):
    """An OpInfo-like entry: what the audit reads from torch's op_db entries (opdb.NEEDED)."""
    return SimpleNamespace(name=name, variant_test_name=variant, op=fn, supports_autograd=True,
                           gradcheck_wrapper=lambda op, *a, **k: op(*a, **k),
                           sample_inputs=lambda device, dtype, **kw: iter(samples))


def sample(*tensors_and_args, **kwargs):
    first, *args = tensors_and_args
    return SimpleNamespace(input=first, args=tuple(args), kwargs=kwargs)


def x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64,
                       requires_grad=True)


def row(audit, op):
    table = per_op(audit)
    return table[table["op"] == op].iloc[0]


def test_a_planted_wrong_backward_fails_and_the_right_one_passes(monkeypatch):
    right = run_audit([fake_op("tanh", torch.tanh, sample(x(5)))], jobs=0)
    assert row(right, "tanh")[["runs", "pass", "fail"]].tolist() == [2, 2, 0]
    assert row(right, "tanh")["worst_ratio"] < 1
    monkeypatch.setattr(torch, "tanh", lambda t: wrong_tanh(t, 2))     # 0.1 % off at one element
    wrong = run_audit([fake_op("tanh", torch.tanh, sample(x(5)))], jobs=0)
    r = row(wrong, "tanh")
    assert r["fail"] == 2 and r["pass"] == 0, r.to_dict()
    assert r["worst_ratio"] > 1
    assert "gradient" in r["reasons"] and r["finding"] == ""


def test_a_wrapper_that_reorders_arguments_is_unsupported_with_its_reason_not_a_fail():
    audit = run_audit([fake_op("sub", lambda a, b: torch.sub(b, a), sample(x(3), x(3, seed=1)))], jobs=0)
    r = row(audit, "sub")
    assert r["mapped"] and r["samples"] == 1 and r["unsupported"] == 1 and r["runs"] == 0
    assert "differ on this sample's forward" in r["reasons"]


def test_an_unsupported_sample_carries_its_reason_and_the_others_still_run():
    op = fake_op("sum", torch.sum, sample(x(4), dtype=torch.float64), sample(x(2, 3), 1))
    r = row(run_audit([op], jobs=0), "sum")
    assert r[["samples", "unsupported", "runs", "pass"]].tolist() == [2, 1, 2, 2]
    assert "1x unsupported: a dtype argument" in r["reasons"]


def test_an_op_the_mirror_lacks_is_listed_unmapped_with_the_reason():
    r = row(run_audit([fake_op("no_such_op_anywhere", torch.sin, sample(x(2)))], jobs=0), "no_such_op_anywhere")
    assert not r["mapped"] and r["runs"] == 0 and "not mapped" in r["reasons"]


def test_torchs_own_op_db_on_a_few_ops_table_columns_counts_and_files(tmp_path):
    pytest.importorskip("expecttest")
    audit = run_audit(pattern=r"^(cumsum|nn\.functional\.hardsigmoid|fft\.fft)$", limit=1, jobs=0)
    table = per_op(audit)
    assert list(table.columns) == COLUMNS
    assert set(table["op"]) == {"cumsum", "nn.functional.hardsigmoid", "fft.fft"}
    mapped = table[table["mapped"]]
    assert (mapped["runs"] == 2 * (mapped["samples"] - mapped["unsupported"])).all()
    assert (mapped["runs"] == mapped["pass"] + mapped["fail"] + mapped["error"]).all()
    assert table.set_index("op").loc["cumsum", "pass"] == 2
    assert table.set_index("op").loc["fft.fft", "mapped"]            # on the complex route (test_audit below)
    n = totals(table, audit)
    assert (n["mapped"], n["runs"]) == (3, int(mapped["runs"].sum()))
    paths = write(audit, tmp_path)
    text = paths["audit"].read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS) and "cumsum" in text
    assert "hardsigmoid" in paths["audit_html"].read_text() and paths["html"].is_file()


def test_a_missing_op_db_gives_the_clear_message(monkeypatch, capsys):
    opdb.load_op_db.cache_clear()
    monkeypatch.setitem(sys.modules, "expecttest", None)         # import expecttest -> ImportError
    try:
        with pytest.raises(opdb.AuditUnavailable, match=r"expecttest.*pip install 'verifier\[audit\]'"):
            opdb.load_op_db()
        assert main(["audit", "--ops", "tanh", "-o", "unused-folder"]) == 2
        assert "pip install 'verifier[audit]'" in capsys.readouterr().err
    finally:
        opdb.load_op_db.cache_clear()


def test_a_changed_op_db_gives_the_clear_message():
    with pytest.raises(opdb.AuditUnavailable, match="changed its OpInfo database"):
        opdb.check_entries([SimpleNamespace(name="tanh", op=torch.tanh)])
    with pytest.raises(opdb.AuditUnavailable, match="empty"):
        opdb.check_entries([])


def test_the_dtypes_option_is_checked():
    assert main(["audit", "--dtypes", "float64,complex128", "-o", "unused-folder"]) == 2


def test_a_finding_stands_only_when_every_fail_of_the_op_names_a_torch_fact(monkeypatch):
    """One fail without a fact keeps the op unexplained (and the audit's exit 1), whatever its other fails say."""
    from verifier.audit import table as table_module
    from verifier.audit.sweep import OpPlan
    monkeypatch.setattr(table_module, "summary", lambda results: None)     # the stats are given below
    case = SimpleNamespace(name="audit.op.s0")
    fact = "gradient: wrong [known torch fact 'hardsigmoid-float32-sixth': ...; see docs/torch-findings.md]"

    def table(*messages):
        results = [SimpleNamespace(case=case, dtype="float64", status="fail", message=m, stats={"worst_ratio": 2.0})
                   for m in messages]
        plan = OpPlan("op", "op", True, cases=[case], samples=1)
        return per_op(SimpleNamespace(plans=[plan], results=results)).iloc[0]

    assert table(fact)["finding"] == "hardsigmoid-float32-sixth"
    assert table(fact, "gradient: autograd differs from exact")["finding"] == ""


def test_a_subgradient_sample_is_unsupported_only_where_the_exact_side_cannot_judge():
    """torch's convention at a non-differentiable point: a pole or an unnamed kink is unsupported (with the
    reason); a failed gradient there, or the same messages on an ordinary sample, stay what they are."""
    from verifier.audit.table import refused
    from verifier.run.checks import Check

    def result(name, status, message, failed):
        checks = [Check(c, False, "x") for c in failed] + [Check("forward", True, "")]
        return SimpleNamespace(case=SimpleNamespace(name=name), status=status, message=message, checks=checks)

    at_zero, plain = "audit.linalg.norm.subgradients_at_zero.1", "audit.linalg.norm.1"
    kink_only = "kink: the case declares a kink, but the function is differentiable at the point"
    pole = "the exact gradient cannot be evaluated at the point: ZeroDivisionError"
    assert refused(result(at_zero, "fail", kink_only, ["kink"]))
    assert refused(result(at_zero, "error", pole, []))
    assert refused(result(at_zero, "non_finite", "non_finite: ...", ["gradient"]))
    assert not refused(result(at_zero, "fail", "gradient: autograd differs; " + kink_only, ["gradient", "kink"]))
    assert not refused(result(plain, "fail", kink_only, ["kink"]))
    assert not refused(result(plain, "error", pole, []))


# --- the class of every sample × dtype, and the exit status ---------------------------------------

def _wrong_hardsigmoid(t):
    """F.hardsigmoid with a backward 0.1 % off at element 1 (inside (-3, 3), where the float64 fact lives)."""
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.nn.functional.hardsigmoid(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            grad = g * ((x > -3) & (x < 3)).to(g.dtype) / 6
            grad.view(-1)[1] *= 1.001
            return grad

    return Wrong.apply(t)


def test_a_torch_fact_is_explained_and_a_wrong_gradient_on_the_same_sample_is_not():
    """hardsigmoid's float64 fact (float32's 1/6) is class 'fact'; a backward 0.1 % off on the same sample
    fails the same check in the same dtype and must stay 'unexplained', never reclassified."""
    point = torch.tensor([-2.5, 0.5, 1.25, 2.0], dtype=torch.float64, requires_grad=True)
    right = row(run_audit([fake_op("nn.functional.hardsigmoid", torch.nn.functional.hardsigmoid,
                                   sample(point))], jobs=0), "nn.functional.hardsigmoid")
    assert right[["fail", "fact", "unexplained"]].tolist() == [1, 1, 0], right.to_dict()
    assert right["finding"] == "hardsigmoid-float32-sixth"
    wrong = row(run_audit([fake_op("nn.functional.hardsigmoid", _wrong_hardsigmoid, sample(point))], jobs=0),
                "nn.functional.hardsigmoid")
    assert wrong["fail"] == 2 and wrong["fact"] == 0 and wrong["unexplained"] == 2, wrong.to_dict()
    assert wrong["finding"] == ""


def _result(status, message="", checks=(), refused=False):
    from verifier.run.checks import Check
    return SimpleNamespace(case=SimpleNamespace(name="audit.op.0", tags=["audit", "op"]), status=status,
                           message=message, refused=refused, checks=[Check(n, ok, d) for n, ok, d in checks])


def test_each_run_gets_exactly_one_class():
    from verifier.audit.table import outcome
    fact = "x [known torch fact 'trigamma-float64': ...; see docs/torch-findings.md]"
    assert outcome(_result("pass")) == "pass"
    assert outcome(_result("fail", fact, [("second_order", False, fact), ("gradient", True, "")])) == "fact"
    # one failed check without a fact leaves the run unexplained, whatever the other says
    assert outcome(_result("fail", fact, [("second_order", False, fact), ("gradient", False, "off")])) == \
        "unexplained"
    assert outcome(_result("timeout", "stopped after 60 s")) == "timeout"
    assert outcome(_result("error", "div: rounding_mode='trunc' is not supported", refused=True)) == "refused"
    # the wording never decides: a crash that says "not supported" is not a refusal
    crash = _result("error", "the symbolic side failed: NotImplementedError: this is not supported")
    assert outcome(crash) == "unexplained"
    assert outcome(_result("non_finite", "non_finite: ...")) == "unexplained"


def test_a_mirror_refusal_is_marked_by_the_runner_and_a_crash_is_not():
    from verifier import Runner, make_case
    # pinv with a cut-off: the mirror declines (no closed form where torch zeroes singular values)
    refusal = make_case("r", {"a": {"value": [[1.0, 2.0], [0.5, 3.0]], "requires_grad": True}},
                        forward="torch.linalg.pinv(a, rtol=0.1)", grad_output="random")
    result = Runner(cache=None).run(refusal, "float64")
    assert result.status == "error" and result.refused, result.message
    # an error that is not the verifier declining (here torch raising on a singular matrix) is not marked
    singular = make_case("s", {"a": {"value": [[1.0, 2.0], [2.0, 4.0]], "requires_grad": True}},
                         forward="torch.linalg.inv(a)", grad_output="random")
    raised = Runner(cache=None).run(singular, "float64")
    assert raised.status == "error" and not raised.refused, raised.message


def test_the_summary_counts_every_class_and_exits_0_only_without_unexplained_or_timeout(monkeypatch, capsys,
                                                                                        tmp_path):
    from verifier.audit import sweep
    point = torch.tensor([-2.5, 0.5, 1.25], dtype=torch.float64, requires_grad=True)
    ops = {"right": [fake_op("nn.functional.hardsigmoid", torch.nn.functional.hardsigmoid, sample(point)),
                     fake_op("sum", torch.sum, sample(x(4), dtype=torch.float64))],
           "wrong": [fake_op("tanh", lambda t: wrong_tanh(t, 1), sample(x(3)))]}
    for which, expected in (("right", 0), ("wrong", 1)):
        # the command's op_db replaced by these ops (run_audit here is the real one, imported above)
        monkeypatch.setattr(sweep, "run_audit", lambda _which=which, **kw: run_audit(ops[_which], jobs=0))
        assert main(["audit", "-o", str(tmp_path / which)]) == expected
        out = capsys.readouterr().out
        line = next(t for t in out.splitlines() if t.startswith("sample x dtype by class"))
        if which == "right":      # hardsigmoid: 1 pass + 1 fact; sum: a dtype argument, refused in 2 dtypes
            assert "1 pass, 1 fail-with-fact, 2 refused-with-reason, 0 timeout, 0 unexplained" in line, line
        else:
            assert "2 unexplained" in line and "exit 0 needs" in line, line

# --- complex samples (torch.fft): the complex route ------------------------------------------------------


_FFT = torch.fft.fft


class _FFT1(torch.autograd.Function):
    """torch.fft.fft with a hand-written backward: the adjoint of the DFT matrix F is conj(F) = n·ifft."""

    @staticmethod
    def forward(ctx, z):
        return _FFT(z)

    @staticmethod
    def backward(ctx, g):
        return g.shape[-1] * torch.fft.ifft(g)


class _FFTForgetsConj(_FFT1):
    @staticmethod
    def backward(ctx, g):
        return _FFT(g)                     # BUG: F·g instead of conj(F)·g (the conj of the DFT matrix forgotten)


class _FFTOneElement(_FFT1):
    @staticmethod
    def backward(ctx, g):
        grad = g.shape[-1] * torch.fft.ifft(g)
        return grad * torch.tensor([1, 1, 1.001j, 1], dtype=grad.dtype)   # BUG: element 2 rotated 0.1 %


def z(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=gen, dtype=torch.float64),
                         torch.randn(*shape, generator=gen, dtype=torch.float64)).requires_grad_(True)


def test_a_complex_sample_runs_on_the_complex_route_in_complex128_and_complex64():
    audit = run_audit([fake_op("fft.fft", _FFT1.apply, sample(z(4)))], jobs=0)
    r = row(audit, "fft.fft")
    assert r["mapped"] and r[["runs", "pass", "fail", "unsupported"]].tolist() == [2, 2, 0, 0], r.to_dict()
    assert {res.dtype for res in audit.results} == {"complex128", "complex64"}
    assert 0 < r["worst_ratio"] < 1


@pytest.mark.parametrize("wrong", [_FFTForgetsConj, _FFTOneElement], ids=["forgets-conj", "one-element"])
def test_a_planted_wrong_complex_backward_fails_in_both_complex_dtypes(wrong):
    r = row(run_audit([fake_op("fft.fft", wrong.apply, sample(z(4)))], jobs=0), "fft.fft")
    assert r["fail"] == 2 and r["pass"] == 0, r.to_dict()
    assert r["worst_ratio"] > 1 and "gradient" in r["reasons"]


def test_a_real_sample_with_a_complex_output_keeps_its_real_input_real():
    audit = run_audit([fake_op("fft.rfft", torch.fft.rfft, sample(x(6), norm="ortho"))], jobs=0)
    r = row(audit, "fft.rfft")
    assert r[["runs", "pass"]].tolist() == [2, 2], r.to_dict()
    case = audit.plans[0].cases[0]
    assert list(case.dtypes) == ["complex128", "complex64"]
    assert case.inputs[0].number == "real"
    assert all(res.rows["exact_imag"].fillna(0).eq(0).all() for res in audit.results)   # a real gradient


def test_a_complex_sample_over_the_complex_routes_size_limit_is_unsupported_with_the_reason():
    """fftn of a 5 x 6 x 7 tensor: every output reads all 420 parts (88 200 derivatives), refused when it runs;
    fft along one dim reads 7 elements per output (2 940 derivatives) and runs."""
    r = row(run_audit([fake_op("fft.fftn", torch.fft.fftn, sample(z(5, 6, 7)))], jobs=0), "fft.fftn")
    assert r[["samples", "unsupported", "runs", "error"]].tolist() == [1, 1, 0, 0], r.to_dict()
    assert "not supported on the complex route" in r["reasons"] and "88200" in r["reasons"]
