"""Structured inputs (symmetric, spd, triangular): values, tangents, finite differences and projected gradients.

Each check has a wrong twin that must be caught: a cholesky backward off by
1.001 on a symmetric pair, a forward-mode jvp off by 1.001 along a symmetric
tangent, and literal values that break their declared structure.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verifier import Runner, load_file, make_case
from verifier.cases.structure import parameters, project
from verifier.errors import CaseError

DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]
SPD = [[4.0, 1.0, 0.5], [1.0, 3.0, -0.5], [0.5, -0.5, 2.5]]


def run(forward, inputs, dtype="float64", **fields):
    fields.setdefault("grad_output", "random")
    return Runner().run(make_case("t.structure", inputs, forward=forward, **fields), dtype)


# --- values and the projection ---------------------------------------------------------------------------


@pytest.mark.parametrize("structure", ["symmetric", "spd", "lower_triangular", "upper_triangular"])
def test_sampled_values_have_their_structure(structure):
    case = make_case("t.v", {"A": {"shape": [2, 4, 4], "sample": "normal", "seed": 3, "structure": structure}},
                     forward="A.sum()")
    a = case.input("A").values()
    if structure in ("symmetric", "spd"):
        assert np.array_equal(a, np.swapaxes(a, -1, -2))
        if structure == "spd":
            assert np.linalg.eigvalsh(a).min() >= 4 - 1e-12       # X X^T + n I
    else:
        other = np.triu(a[0], 1) if structure == "lower_triangular" else np.tril(a[0], -1)
        assert not other.any() and np.count_nonzero(a[0]) == 10


def test_the_projection_is_orthogonal_onto_the_structure():
    rng = np.random.default_rng(0)
    g, d = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    for structure in ("symmetric", "lower_triangular", "upper_triangular"):
        p = project(structure, g)
        inside = project(structure, d)
        assert np.allclose(project(structure, p), p)                           # idempotent
        assert np.isclose(np.sum(p * inside), np.sum(g * inside))              # <P(G), D> = <G, D> on S


def test_parameters_fill_a_symmetric_matrix_from_its_lower_triangle():
    free, owner, count = parameters("symmetric", 3)
    assert list(free) == [0, 3, 4, 6, 7, 8]                      # (0,0) (1,0) (1,1) (2,0) (2,1) (2,2)
    assert owner.reshape(3, 3)[0, 2] == owner.reshape(3, 3)[2, 0]
    assert sorted(count) == [1, 1, 1, 2, 2, 2]
    free, owner, count = parameters("upper_triangular", 3)
    assert list(free) == [0, 1, 2, 4, 5, 8] and (owner.reshape(3, 3)[1, 0] == -1) and set(count) == {1}


# --- the cholesky: FD and forward mode within the structure ------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_cholesky_of_a_symmetric_input_passes_forward_mode_and_fd(dtype):
    """Without the structure, forward mode fails and 6 of 9 FD elements miss; with it all agree."""
    plain = run("torch.linalg.cholesky(A)", {"A": SPD}, dtype)
    assert plain.forward_mode.status == "fail"
    assert int((~plain.rows["fd_ok"]).sum()) == 6
    r = run("torch.linalg.cholesky(A)", {"A": {"value": SPD, "structure": "symmetric"}}, dtype)
    assert r.status == "pass", r.message
    assert r.forward_mode.status == "pass" and r.second_order.status == "pass"
    assert r.rows["fd_ok"].all() and set(r.rows["attribution"]) == {"all_agree"}
    u = r.forward_mode.direction["A"]
    assert np.array_equal(u, u.T)                                   # the tangent is symmetric
    assert any("symmetric structure's 6 parameters" in note for note in r.fd.notes)


def test_fd_moves_a_symmetric_pair_together():
    """g(A) = A[1, 0]: on symmetric matrices moving A_10 moves A_01 too; the projected gradient is 1/2 at both."""
    r = run("A[1, 0]", {"A": {"value": SPD, "structure": "symmetric"}}, grad_output="ones")
    assert r.status == "pass", r.message
    got = r.rows.set_index("index")
    for idx in ("(1, 0)", "(0, 1)"):
        assert got.loc[idx, "exact"] == 0.5 and got.loc[idx, "autograd"] == 0.5
        assert got.loc[idx, "finite_diff"] == pytest.approx(0.5, abs=1e-9)
    assert got.drop(index=["(1, 0)", "(0, 1)"])["exact"].eq(0).all()


def test_a_triangular_input_differences_only_its_triangle():
    r = run("torch.linalg.solve_triangular(L, B, upper=False)",
            {"L": {"value": [[2.0, 0.0], [0.5, 1.5]], "structure": "lower_triangular"},
             "B": {"shape": [2, 2], "sample": "normal", "seed": 1}})
    assert r.status == "pass", r.message
    rows = r.rows[r.rows["input"] == "L"].set_index("index")
    assert rows.loc["(0, 1)", "fd_method"] == "outside structure"
    assert rows.loc["(0, 1)", "attribution"] == "fd_not_sampled" and rows.loc["(0, 1)", "exact"] == 0
    assert rows.drop(index="(0, 1)")["fd_ok"].all()


# --- wrong derivatives are still caught ---------------------------------------------------------------------


def _cholesky_function(scale_pair: float = 1.0, jvp_scale: float = 1.0):
    """torch's cholesky in a custom Function: its backward (times ``scale_pair`` at (0, 1) and (1, 0)) and a jvp."""

    class Cholesky(torch.autograd.Function):
        @staticmethod
        def forward(a):
            return torch.linalg.cholesky(a)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            with torch.enable_grad():
                a = a.detach().requires_grad_()
                (grad,) = torch.autograd.grad(torch.linalg.cholesky(a), a, g)
            grad = grad.clone()
            grad[0, 1] *= scale_pair
            grad[1, 0] *= scale_pair
            return grad

        @staticmethod
        def jvp(ctx, t):
            (a,) = ctx.saved_tensors           # dL = L Phi(L^-1 dA L^-T), Phi: lower triangle, half diagonal
            low = torch.linalg.cholesky(a)
            y = torch.linalg.solve_triangular(low, t, upper=False)
            x = torch.linalg.solve_triangular(low, y.mT, upper=False).mT
            phi = x.tril(-1) + torch.diag_embed(x.diagonal() / 2)
            return low @ phi * jvp_scale

    return Cholesky.apply


def _custom(fn, dtype):
    case = make_case("t.chol", {"A": {"value": SPD, "structure": "symmetric"}}, torch=fn,
                     sympy=lambda a: _mirror_cholesky(a), grad_output="random",
                     checks={"second_order": False})     # the custom backward is not differentiable itself
    return Runner().run(case, dtype)


def _mirror_cholesky(a):
    from verifier.exact.mirror import resolve
    return resolve("cholesky").sym(a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_wrong_backward_of_a_structured_input_is_caught(dtype):
    right = _custom(_cholesky_function(), dtype)
    assert right.status == "pass", right.message
    wrong = _custom(_cholesky_function(scale_pair=1.001), dtype)
    assert wrong.status == "fail"
    bad = wrong.rows[~wrong.rows["ok"]]
    assert set(bad["index"]) == {"(0, 1)", "(1, 0)"} and set(bad["attribution"]) == {"autograd_wrong"}


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_wrong_jvp_along_a_structured_tangent_is_caught(dtype):
    right = _custom(_cholesky_function(), dtype)
    assert right.forward_mode.status == "pass", right.forward_mode.detail
    wrong = _custom(_cholesky_function(jvp_scale=1.001), dtype)
    assert wrong.status == "fail" and wrong.forward_mode.status == "fail"
    assert "forward_mode" in wrong.message


# --- the case field -------------------------------------------------------------------------------------


def test_the_structure_field_is_checked_with_clear_errors(write_case):
    path = write_case("""
        cases:
          - name: t.ok
            inputs: {A: {shape: [3, 3], sample: normal, structure: spd}}
            forward: torch.linalg.cholesky(A)
          - name: t.not_symmetric
            inputs: {A: {value: [[1.0, 2.0], [0.0, 1.0]], structure: symmetric}}
            forward: A.sum()
          - name: t.not_spd
            inputs: {A: {value: [[1.0, 2.0], [2.0, 1.0]], structure: spd}}
            forward: A.sum()
          - name: t.not_lower
            inputs: {A: {value: [[1.0, 2.0], [0.0, 1.0]], structure: lower_triangular}}
            forward: A.sum()
          - name: t.not_square
            inputs: {A: {shape: [2, 3], sample: normal, structure: symmetric}}
            forward: A.sum()
          - name: t.unknown
            inputs: {A: {shape: [2, 2], sample: normal, structure: hermitian}}
            forward: A.sum()
    """)
    loaded = load_file(path)
    assert [c.name for c in loaded.cases] == ["t.ok"]
    text = "\n".join(str(e) for e in loaded.errors)
    assert "'A' has structure 'symmetric' but its value is not symmetric: element (0, 1) differs from (1, 0)" in text
    assert "is not positive definite" in text
    assert "is not lower triangular: element (0, 1) above the diagonal is not 0" in text
    assert "needs square matrices in the last two dimensions, but the shape is [2, 3]" in text
    assert "hermitian" in text and len(loaded.errors) == 5


def test_make_case_refuses_a_structure_on_an_index_input():
    with pytest.raises(CaseError, match="needs a floating input"):
        make_case("t.i", {"A": {"value": [[1, 0], [0, 1]], "dtype": "int64", "structure": "symmetric"},
                          "x": [1.0]}, forward="x.sum()")


# --- an eigh-style op: eigvalsh -------------------------------------------------------------------------


SYMMETRIC_2X2 = [[[1.5, -0.4], [-0.4, 0.3]], [[2.0, 0.7], [0.7, 2.5]]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_eigvalsh_needs_the_structure_and_passes_with_it(dtype):
    """The mirror reads the lower triangle (as torch's forward); torch's backward is symmetric: one gradient on S."""
    plain = run("torch.linalg.eigvalsh(A)", {"A": SYMMETRIC_2X2}, dtype)
    assert plain.status == "fail" and "gradient" in plain.message          # the conventions differ off S
    r = run("torch.linalg.eigvalsh(A)", {"A": {"value": SYMMETRIC_2X2, "structure": "symmetric"}}, dtype)
    assert r.status == "pass", r.message
    assert r.forward_mode.status == "pass" and r.second_order.status == "pass"
    assert r.rows["fd_ok"].all()
    # the values are the eigenvalues of the point (the input as the dtype holds it)
    expected = np.linalg.eigvalsh(np.array(SYMMETRIC_2X2, dtype=getattr(np, dtype)).astype(np.float64))
    assert np.allclose(r.exact.output, expected, rtol=1e-12, atol=0)


def test_eigvalsh_of_a_larger_matrix_takes_the_numeric_exact_route():
    r = run("torch.linalg.eigvalsh(A)", {"A": {"shape": [3, 3], "sample": "normal", "structure": "symmetric"}})
    assert r.status == "pass", r.message
    assert r.route.startswith("numeric-exact (mpmath 60 digits, Richardson)")


def test_eigvalsh_of_a_batch_of_larger_matrices_is_refused_with_a_reason():
    r = run("torch.linalg.eigvalsh(A)", {"A": {"shape": [2, 3, 3], "sample": "normal", "structure": "symmetric"}})
    assert r.status == "error"
    assert "numeric-exact route, for one matrix only" in r.message
