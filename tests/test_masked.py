"""The torch.masked namespace: mirrors against torch, the built-in cases, planted bugs, the audit's wrapper."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from corpus.masked import CASES, DTYPES, MASKED_BUGS
from corpus.registry import assert_caught, assert_passes, case_library

from verifier import Runner
from verifier.cases.registry import make_case
from verifier.exact import mirror

RUNNER = Runner(forward_mode=False, second_order=False)
OPS = ["sum", "prod", "cumsum", "cumprod", "amax", "amin", "mean", "median", "norm", "var", "std", "logsumexp",
       "softmax", "log_softmax", "softmin", "normalize", "logaddexp"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id) for e in MASKED_BUGS])
def test_the_masked_bug_is_caught(entry, dtype):
    assert_caught(RUNNER.run(entry.run_case(buggy=True), dtype), entry.bug)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", [pytest.param(e, id=e.id) for e in MASKED_BUGS])
def test_the_correct_masked_twin_passes(entry, dtype):
    assert_passes(RUNNER.run(entry.run_case(buggy=False), dtype))


def test_every_masked_op_has_a_mirror_and_a_built_in_case():
    cases = case_library(CASES)
    for op in OPS:
        assert mirror.resolve(f"torch.masked.{op}").torch is getattr(torch.masked, op)
        assert any(f"torch.masked.{op}" in c.tags for c in cases.values()), op


@pytest.mark.parametrize("name", sorted(case_library(CASES)))
def test_the_built_in_masked_case_passes(name):
    case = case_library(CASES)[name]
    for dtype in case.dtypes:
        result = Runner().run(case, dtype)
        assert result.status == "pass", (dtype, result.message)


# --- forward values, fully masked slices included --------------------------------------------

def _sym(entry, x, *args, **kwargs):
    out = entry.sym(np.asarray(x.tolist(), dtype=float), *args, **kwargs)
    return np.array([float(v.doit()) for v in out.flat]).reshape(out.shape)     # doit: unevaluated indicators


MASK = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1]], dtype=torch.bool)
COLUMN_MASK = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 1], [1, 0, 0, 1]], dtype=torch.bool)     # column 1 fully
CALLS = {
    "sum": ((1,), {"keepdim": True}), "prod": ((1,), {}), "cumsum": ((1,), {}), "cumprod": ((0,), {}),
    "amax": ((1,), {}), "amin": (((0, 1),), {}), "mean": ((1,), {}), "median": ((1,), {}),
    "norm": ((2.0, 1), {}), "var": ((1,), {}), "std": ((1,), {"unbiased": False}), "logsumexp": ((1,), {}),
    "softmax": ((1,), {}), "log_softmax": ((1,), {}), "softmin": ((0,), {}), "normalize": ((2.0, 1), {}),
}


@pytest.mark.parametrize("op", sorted(CALLS))
def test_the_mirror_gives_torchs_value_also_where_everything_is_masked_out(op):
    x = torch.tensor(np.random.default_rng(3).normal(size=(3, 4)))
    args, kwargs = CALLS[op]
    mask = MASK if op != "softmin" else COLUMN_MASK         # softmin goes along dim 0
    want = getattr(torch.masked, op)(x, *args, mask=mask, **kwargs).numpy()
    got = _sym(mirror.resolve(f"torch.masked.{op}"), x, *args, mask=mask.numpy(), **kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "softmin", "sum", "amax", "cumsum"])
@pytest.mark.parametrize("valid", [True, False])
def test_a_0d_input_with_a_0d_mask(op, valid):
    x, mask = torch.tensor(0.7, dtype=torch.float64), torch.tensor(valid)
    args = (0,) if op in ("softmax", "log_softmax", "softmin", "cumsum") else ()
    want = getattr(torch.masked, op)(x, *args, mask=mask).numpy()
    got = _sym(mirror.resolve(f"torch.masked.{op}"), x, *args, mask=mask.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)


def test_a_mask_broadcasts_and_one_of_more_dims_is_refused():
    x = torch.tensor(np.random.default_rng(4).normal(size=(3, 4)))
    entry = mirror.resolve("torch.masked.sum")
    row = torch.tensor([True, False, True, True])
    np.testing.assert_allclose(_sym(entry, x, 0, mask=row.numpy()), torch.masked.sum(x, 0, mask=row).numpy(),
                               rtol=1e-12)
    with pytest.raises(Exception, match="more than the input"):
        entry.sym(np.zeros((3, 4)), 0, mask=np.ones((2, 3, 4), dtype=bool))


def test_masked_logaddexp_passes_the_valid_operand_and_minus_inf_where_both_are_masked():
    a, b = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.5, 0.25, -3.0])
    ma, mb = torch.tensor([True, False, False]), torch.tensor([True, True, False])
    want = torch.masked.logaddexp(a, b, input_mask=ma, other_mask=mb).double().numpy()
    got = mirror.resolve("torch.masked.logaddexp").sym(a.double().numpy(), b.double().numpy(), input_mask=ma.numpy(),
                                                       other_mask=mb.numpy())
    np.testing.assert_allclose([float(v) for v in got.flat], want, rtol=1e-7)


# --- the log_softmax wrap, and torch's logaddexp double backward at -inf ----------------------

def test_log_softmax_unwrapped_fails_where_torch_sends_gradient_from_minus_inf_outputs():
    """Why the built-in case wraps log_softmax: torch differentiates the -inf at a masked-out output as
    -inf - logsumexp(x), a gradient -softmax_j * v_i into the valid inputs; the exact output there is the
    constant -inf (derivative 0). With v zero at masked-out outputs (the wrap) both agree."""
    case = case_library(CASES)["masked.log_softmax_wrapped"]
    spec = {"x": {"shape": [3, 4], "sample": "normal", "seed": 1516},
            "m": {"value": [[1, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 1]], "dtype": "bool"}}
    bare = make_case("t.log_softmax_bare", spec, forward="torch.masked.log_softmax(x, 1, mask=m)",
                     grad_output="random", dtypes=["float64"])
    result = RUNNER.run(bare, "float64")
    assert result.status == "fail" and "gradient" in [c.name for c in result.checks if not c.ok]
    assert RUNNER.run(dataclasses.replace(case, dtypes=["float64"]), "float64").status == "pass"


def test_torch_logaddexp_double_backward_is_nan_at_a_minus_inf_operand():
    """The torch fact behind masked.logaddexp's `checks: {second_order: false}`: the exact mixed second
    derivative is 0 there; torch computes exp(a - b) / (1 + exp(a - b))^2 as inf / inf."""
    a = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([float("-inf")], dtype=torch.float64, requires_grad=True)
    ga, gb = torch.autograd.grad(torch.logaddexp(a, b), (a, b), torch.zeros(1, dtype=torch.float64),
                                 create_graph=True)
    assert torch.isnan(torch.autograd.grad(ga + gb, a)[0]).all()
    case = case_library(CASES)["masked.logaddexp"]
    result = Runner().run(dataclasses.replace(case, checks={**case.checks, "second_order": True}), "float64")
    assert result.status == "non_finite" and "second_order" in (result.message or "")


# --- the audit: PyTorch's masked gradcheck wrapper written into the case -------------------------

def _audit_op(fn, *samples):
    from types import SimpleNamespace

    def gradcheck_wrapper_masked_operation(op, input, *args, **kwargs):     # the name the audit reads
        raise AssertionError("the audit writes the wrapper into the case; it never calls it")
    return SimpleNamespace(name="masked.amax", variant_test_name="", op=fn, supports_autograd=True,
                           gradcheck_wrapper=gradcheck_wrapper_masked_operation,
                           sample_inputs=lambda device, dtype, **kw: iter(samples))


def _amax_sample():
    from types import SimpleNamespace
    x = torch.tensor([[3.0, -0.4, 1.1], [0.2, 1.9, -1.3], [-0.8, 0.1, 2.4]], dtype=torch.float64,
                     requires_grad=True)
    mask = torch.tensor([[False, True, True], [False, False, False], [True, True, False]])    # row 1 fully masked
    return SimpleNamespace(input=x, args=(1,), kwargs={"mask": mask})


class _AmaxForgettingTheMask(torch.autograd.Function):
    """torch.masked.amax's forward; the backward of the unmasked amax (the gradient to a masked-out maximum)."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(x)
        return torch.masked.amax(x, 1, mask=mask)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            leaf = x.detach().requires_grad_()
            return torch.autograd.grad(torch.amax(leaf, 1), leaf, torch.nan_to_num(g, posinf=0, neginf=0))[0], None


def test_the_audit_wraps_a_masked_op_as_pytorch_does_and_the_right_one_passes():
    from verifier.audit.mapping import spelling
    from verifier.audit.samples import case_for
    from verifier.audit.sweep import run_audit
    from verifier.audit.table import per_op
    op = _audit_op(torch.masked.amax, _amax_sample())
    case = case_for(op, spelling(op)[0], _amax_sample(), 0, ["float64"])
    assert str(case.torch_fn).startswith("torch.where(t2, torch.masked.amax(t0, 1, mask=t1), 0.0)")
    table = per_op(run_audit([op], jobs=0))
    assert table.iloc[0][["runs", "pass", "fail", "unsupported"]].tolist() == [2, 2, 0, 0]


def test_the_audit_catches_a_masked_op_whose_backward_forgets_the_mask(monkeypatch):
    from verifier.audit.sweep import run_audit
    from verifier.audit.table import per_op

    def amax(input, dim=None, *, keepdim=False, dtype=None, mask=None):      # torch's _output_mask reads the name
        return _AmaxForgettingTheMask.apply(input, mask)
    entry = mirror.resolve("torch.masked.amax")
    monkeypatch.setitem(mirror.SPELLINGS, "torch.masked.amax", dataclasses.replace(entry, torch=amax))
    r = per_op(run_audit([_audit_op(amax, _amax_sample())], jobs=0)).iloc[0]
    assert r["fail"] == 2 and r["pass"] == 0 and r["worst_ratio"] > 1, r.to_dict()
    assert "gradient" in r["reasons"]
