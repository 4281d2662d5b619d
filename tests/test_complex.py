"""Complex numbers end to end (docs/complex.md): the case format, the language, the route, the API, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch
from corpus.complex import Exp, Mul

import verifier
from verifier import GradientMismatch, Runner, load_file, make_case
from verifier.errors import CaseError
from verifier.report import tables

DTYPES = ["complex128", "complex64"]


def run(case, dtype):
    return Runner(cache=False).run(case, dtype)


# --- the worked example of docs/complex.md ------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_worked_example_abs_squared_at_1_plus_2i_gives_2_plus_4i(dtype):
    """L = |z|² = x² + y² at z = 1 + 2i: ∂L/∂x + i·∂L/∂y = 2 + 4i, exactly what torch's z.grad holds."""
    z = torch.tensor([1 + 2j], dtype=getattr(torch, dtype), requires_grad=True)
    (z.abs() ** 2).sum().backward()
    assert z.grad.tolist() == [2 + 4j]
    case = make_case("w.abs2", {"z": [1 + 2j]}, forward="(z.abs()**2).sum()", dtypes=DTYPES, grad_output="ones")
    result = run(case, dtype)
    assert result.status == "pass", result.message
    assert result.exact.vjp["z"].tolist() == [2 + 4j]
    row = result.rows.iloc[0]
    assert (row["exact"], row["exact_imag"], row["autograd"], row["autograd_imag"]) == (2.0, 4.0, 2.0, 4.0)


def test_the_built_in_worked_example_states_the_value():
    case = next(c for c in load_file("cases/complex.yaml").cases if c.name == "complex.abs_squared")
    assert case.expect.grad == {"z": [2 + 4j]}
    assert all(run(case, d).status == "pass" for d in DTYPES)


# --- wrong gradients are caught, right ones pass -------------------------------------------------------


class ConjOnlyImagOff(Exp):
    """exp(z) with a backward whose imaginary part is off by 0.1 %: the real part is right."""

    @staticmethod
    def backward(ctx, g):
        right = Exp.backward(ctx, g)
        return torch.complex(right.real, right.imag * 1.001)


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_error_only_in_the_imaginary_part_fails(dtype):
    case = make_case("w.imag_off", {"z": ["0.3+1.2j", "-1+0.5j"]}, torch=ConjOnlyImagOff.apply, sympy="exp(z)",
                     dtypes=DTYPES, grad_output="random")
    result = run(case, dtype)
    assert result.status == "fail" and "gradient" in result.message
    bad = result.rows[~result.rows["ok"]]
    assert len(bad) and (bad["abs_err"] > bad["tolerance"]).all()
    right = make_case("w.imag_right", {"z": ["0.3+1.2j", "-1+0.5j"]}, forward="exp(z)", dtypes=DTYPES,
                      grad_output="random")
    assert run(right, dtype).status == "pass"


class SmallBesideLarge(Mul):
    """z·w with w = [1000, 1e-3]: the gradient of the small element is off by 1e-4·i (a global scale hides it)."""

    @staticmethod
    def backward(ctx, g):
        gz, _ = Mul.backward(ctx, g)
        return gz + torch.tensor([0, 1e-4j], dtype=gz.dtype), None


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_small_complex_element_is_judged_by_its_own_size(dtype):
    case = make_case("w.small", {"z": ["1+1j", "1-1j"], "w": {"value": ["1000+0j", "0.001+0j"],
                                                                 "requires_grad": False}},
                     torch=SmallBesideLarge.apply, sympy="z * w", dtypes=DTYPES, grad_output="ones")
    result = run(case, dtype)
    assert result.status == "fail", result.message
    assert result.rows["ok"].tolist() == [True, False]


# --- the case format and the language ------------------------------------------------------------------


def test_complex_dtypes_literals_and_real_inputs_load(write_case):
    path = write_case("""
        cases:
          - name: c.load
            dtypes: [complex64, complex128]
            inputs:
              z: {value: ["1+2j", "-3j", 0.5]}
              r: {value: [1.0, 2.0, 3.0], dtype: real}
              w: {shape: [3], sample: normal, dtype: complex128}
            forward: (z * r + w * 1j).abs()
            grad_output: [1.0, "0.5-0.5j", 2]
            expect: {output: ["1+0j", 1, 1]}
        """)
    loaded = load_file(path)
    assert not loaded.errors, loaded.errors
    (case,) = loaded.cases
    z, r, w = case.inputs
    assert z.values().tolist() == [1 + 2j, -3j, 0.5 + 0j]
    assert (r.number, w.number, z.number) == ("real", "complex128", None)
    assert case.grad_output.values((3,)).tolist() == [1, 0.5 - 0.5j, 2]


@pytest.mark.parametrize("text, words", [
    ('{value: ["1+2k"]}', "got a string '1+2k' (a complex number is a string such as '1+2j')"),
    ('{value: ["1+2jj"]}', "holds the text '1+2jj', which is not a number"),
    ('{value: ["1+2j"], dtype: real}', "has dtype real but holds a complex number"),
    ('{value: ["1+2j"], domain: [0, 1]}', "a domain"),
    ('{value: ["1+2j"], dtype: complex256}', "complex256"),
])
def test_bad_complex_inputs_say_what_is_wrong(write_case, text, words):
    path = write_case(f"""
        cases:
          - name: c.bad
            dtypes: [complex128]
            inputs:
              z: {text}
            forward: z.abs()
        """)
    loaded = load_file(path)
    assert not loaded.cases and len(loaded.errors) == 1
    assert words in str(loaded.errors[0]) and "c.bad" in str(loaded.errors[0])


def test_a_complex_dtype_typo_is_refused_with_a_suggestion(write_case):
    path = write_case("""
        cases:
          - name: c.typo
            dtypes: [complex46]
            inputs: {z: [1.0]}
            forward: z
        """)
    (err,) = load_file(path).errors
    assert "complex46" in str(err) and "complex64" in str(err)


def test_the_language_reads_1j_real_and_imag_but_no_method_call_of_real():
    case = make_case("c.lang", {"z": ["1+2j"]}, forward="(z.real * 2j + z.imag).abs()", dtypes=DTYPES,
                     grad_output="ones")
    assert run(case, "complex128").status == "pass"
    with pytest.raises(CaseError, match="property"):
        make_case("c.lang2", {"z": ["1+2j"]}, forward="z.real()", dtypes=DTYPES)


def test_real_cases_keep_their_meaning_of_real():
    """x.real of a real tensor is x on both sides; x.imag is torch's own refusal."""
    case = make_case("c.realx", {"x": [1.0, -2.0]}, forward="x.real * 3", grad_output="ones")
    assert run(case, "float64").status == "pass"
    imag = make_case("c.imagx", {"x": [1.0, -2.0]}, forward="x.imag * 3", grad_output="ones")
    result = run(imag, "float64")
    assert result.status == "error" and "imag is not implemented" in result.message


# --- refusals and notes ----------------------------------------------------------------------------------


def test_complex32_is_refused_clearly():
    case = make_case("c.half", {"z": ["1+2j"]}, forward="z * 2", dtypes=["complex32"], grad_output="ones")
    result = run(case, "complex32")
    assert result.status == "error" and "complex32" in result.message and "Drop complex32" in result.message


def test_a_real_dtype_run_of_a_complex_case_does_not_crash():
    """Runner().run(case, 'complex128') on a case written for float64 ran into KeyError before."""
    case = make_case("c.any", {"x": [1.0, 2.0]}, forward="x.exp()", grad_output="ones")
    result = run(case, "complex128")
    assert result.status == "pass", result.message


def test_complex_values_in_a_real_run_are_refused_before_they_lose_their_imaginary_part():
    with pytest.raises(CaseError, match="holds complex numbers but the case runs in the real dtype") as info:
        make_case("c.mixed", {"z": ["1+2j"]}, forward="z * 2", dtypes=["float64", "complex128"])
    assert "dtype: complex128" in info.value.hint
    declared = make_case("c.declared", {"z": {"value": ["1+2j"], "dtype": "complex128"}}, forward="z.abs()",
                         dtypes=["float64"], grad_output="ones")
    assert run(declared, "float64").status == "pass"


def test_checks_not_realified_are_skipped_with_a_note_never_passed():
    case = make_case("c.note", {"z": ["1+2j"]}, forward="z.exp()", dtypes=DTYPES, grad_output="ones")
    result = run(case, "complex128")
    skipped = {c.name: c for c in result.checks if c.skipped}
    assert set(skipped) == {"forward_mode", "second_order"}
    assert all("complex route" in c.detail for c in skipped.values())
    assert "holomorphic" in result.message and "second_order" in result.message
    assert [c.name for c in result.checks if c.name == "holomorphic"] == ["holomorphic"]


def test_a_non_holomorphic_function_is_not_called_holomorphic():
    case = make_case("c.nonholo", {"z": ["1+2j"]}, forward="z.conj() * z", dtypes=DTYPES, grad_output="ones")
    result = run(case, "complex128")
    assert result.status == "pass" and "holomorphic" not in result.message
    assert result.exact.route_gap is None


def test_backward_repeat_is_refused_for_complex_cases():
    case = make_case("c.rep", {"z": ["1+2j"]}, forward="z.exp()", dtypes=DTYPES, grad_output="ones",
                     backward={"repeat": 2})
    result = run(case, "complex64")
    assert result.status == "error" and "repeat" in result.message


# --- the API ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_assert_gradients_checks_a_complex_tensor_at_its_dtype(dtype):
    z = torch.tensor([1 + 2j, 0.5 - 1j, -0.25 + 0.75j], dtype=dtype)
    out = verifier.assert_gradients(lambda z: torch.sin(z).abs().sum(), lambda z: np.vectorize(
        lambda e: sympy.Abs(sympy.sin(e)), otypes=[object])(z).sum(), {"z": z})
    assert (out.summary["status"] == "pass").all()
    assert "autograd_imag" in out.details and out.details["autograd_imag"].abs().max() > 0

    def wrong(z):
        return ConjOnlyImagOff.apply(z).real.sum()
    with pytest.raises(GradientMismatch):
        verifier.assert_gradients(wrong, lambda z: np.vectorize(lambda e: sympy.re(sympy.exp(e)),
                                                                 otypes=[object])(z).sum(), {"z": z})


def test_make_case_takes_python_complex_numbers_and_complex_numpy_arrays():
    case = make_case("c.py", {"z": [[1 + 2j, 3.0], [0.5j, -1.0]], "w": np.array([1 - 1j, 2 + 0j])},
                     forward="z @ w", dtypes=DTYPES, grad_output=[1 + 1j, 2.0])
    assert case.inputs[0].values().dtype == np.complex128
    for dtype in DTYPES:
        assert run(case, dtype).status == "pass"


def test_complex_rows_go_into_the_tables_and_reports(tmp_path):
    from verifier.report.writing import write_reports
    case = make_case("c.rep2", {"z": ["1+2j", "-1+0.5j"]}, forward="z.sgn()", dtypes=DTYPES, grad_output="random")
    results = [run(case, d) for d in DTYPES]
    detail = tables.details(results)
    assert {"exact_imag", "autograd_imag", "finite_diff_imag"} <= set(detail.columns)
    assert np.isfinite(detail["ulp_err"]).all() and (detail["attribution"].astype(str) == "all_agree").all()
    write_reports(results, tmp_path)
    assert (tmp_path / "details.csv").is_file() and (tmp_path / "report.html").is_file()


# --- the command line --------------------------------------------------------------------------------------


def test_the_cli_runs_and_explains_complex_dtypes(cli):
    from conftest import ROOT
    done = cli("run", ROOT / "cases" / "complex.yaml", "-k", "abs_squared", "--dtype", "complex64",
               "--no-progress", "--report-dir", "r")
    assert done.returncode == 0, done.stdout + done.stderr
    explained = cli("explain", "complex.abs_squared", "--dtype", "complex128", cwd=ROOT)
    assert explained.returncode == 0, explained.stdout + explained.stderr
    assert "realified" in explained.stdout and "z.grad: [2+4j]" in explained.stdout
    typo = cli("run", "--dtype", "complex46")
    assert typo.returncode == 2 and "complex64" in typo.stderr


def test_the_holomorphic_check_fails_when_the_two_exact_routes_disagree():
    """The second route can fail: a gap beyond 40-digit noise is reported as the verifier's own bug."""
    from verifier.run.complex_run import _checks
    case = make_case("c.holo", {"z": ["1+2j"]}, forward="z.exp()", dtypes=DTYPES, grad_output="ones")
    result = run(case, "complex128")
    agrees = [c for c in _checks(case, result.columns, result.autograd, result.exact, verifier.DEFAULT_TOLERANCES[
        "float64"]) if c.name == "holomorphic"]
    assert agrees and agrees[0].ok
    result.exact.route_gap = 1e-12
    broken = [c for c in _checks(case, result.columns, result.autograd, result.exact, verifier.DEFAULT_TOLERANCES[
        "float64"]) if c.name == "holomorphic"]
    assert not broken[0].ok and "please report it" in broken[0].detail


def test_the_failure_text_shows_complex_values_and_dtypes():
    from corpus.complex import MulNoConj

    from verifier.verdict.failure import describe_all
    case = make_case("c.text", {"z": ["1+2j", "0.5-1j"], "w": ["2-1j", "1j"]}, torch=MulNoConj.apply,
                     sympy="z * w", dtypes=["complex64"], grad_output=["1+1j", 2])
    text = describe_all([run(case, "complex64")])
    assert "z: shape [2], complex64" in text and "grad_output: [1.+1.j, 2.+0.j]" in text
    assert "1+3j" in text and "3+1j" in text          # exact and autograd of z[0], both parts


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_real_case_with_a_complex_output_takes_the_complex_route(dtype):
    """torch.polar or 1j·x in a real-dtype case: checked with complex v (this ended in 'cannot evaluate I')."""
    case = make_case("c.polar_real", {"r": [1.0, 2.0], "t": [0.5, -1.0]}, forward="torch.polar(r, t) * 1j",
                     grad_output="random", dtypes=["float64", "float32"])
    result = run(case, dtype)
    assert result.status == "pass", result.message
    assert "complex route" in result.message and result.autograd.weights.dtype.kind == "c"
    wrong = make_case("c.polar_wrong", {"r": [1.0, 2.0], "t": [0.5, -1.0]}, torch=lambda r, t: ConjOnlyImagOff.apply(
        torch.polar(r, t)), sympy="exp(polar(r, t))", grad_output="random", dtypes=["float64", "float32"])
    assert run(wrong, dtype).status == "fail"
