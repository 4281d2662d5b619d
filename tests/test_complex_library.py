"""cases/complex.yaml: at least 20 complex cases, the issue's functions covered, each passing in complex64 and
complex128, and each failing when its gradient is off by a factor 1.001."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_library import ScaleGrad  # the identity whose backward is off by 1.001

from verifier import Runner, load_file
from verifier.exact import mirror
from verifier.torch_side.autograd import torch_callable

CASES = Path(__file__).resolve().parent.parent / "cases" / "complex.yaml"
FUNCTIONS = ["real", "imag", "conj", "abs", "angle", "polar", "complex", "view_as_real", "view_as_complex", "sgn",
             "exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "sqrt", "pow", "reciprocal", "sum", "mean",
             "matmul", "einsum", "fft", "ifft", "rfft", "irfft", "fft2"]


def load_library(path: Path) -> list:
    loaded = load_file(path)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return loaded.cases


def run_library(cases) -> dict:
    runner = Runner(cache=False)
    return {(c.name, d): runner.run(c, d) for c in cases for d in c.dtypes}


def factor_1001_caught(library, results) -> int:
    """Runs of ``library`` with a nonzero exact gradient whose backward, off by 1.001, fails on the gradient."""
    runner, caught = Runner(cache=False), 0
    for case in library:
        original = torch_callable(case)
        wrong = dataclasses.replace(case, torch_fn=lambda *t, f=original: ScaleGrad.apply(f(*t)))
        for dtype in case.dtypes:
            rows = results[(case.name, dtype)].rows
            exact = rows[[c for c in ("exact", "exact_imag") if c in rows]].to_numpy()     # a real run: no imag
            if np.max(np.abs(exact), initial=0.0) == 0.0:
                continue
            r = runner.run(wrong, dtype)
            assert r.status == "fail" and any(c.name == "gradient" and not c.ok for c in r.checks), \
                (case.name, dtype, r.message)
            caught += 1
    return caught


@pytest.fixture(scope="module")
def library():
    return load_library(CASES)


@pytest.fixture(scope="module")
def results(library):
    return run_library(library)


def test_at_least_20_cases_in_both_complex_dtypes(library):
    both = [c for c in library if {"complex64", "complex128"} <= set(c.dtypes)]
    assert len(both) >= 20 and all(c.family == "complex" for c in library)


def test_the_functions_the_issue_lists_have_a_case(library):
    used = set()
    for case in library:
        text = str(case.torch_fn)
        used |= {mirror.resolve(n).canonical or n for n in case.torch_fn.functions if mirror.known(n)}
        used |= {"pow"} if "**" in text else set()
        used |= {"matmul"} if "@" in text else set()
        used |= {p for p in ("real", "imag") if f".{p}" in text}
    missing = {f for f in FUNCTIONS if f not in used and mirror.resolve(f).name not in used}
    assert not missing, sorted(missing)


def test_every_complex_case_passes(results):
    failed = {k: r.message for k, r in results.items() if r.status != "pass"}
    assert not failed, failed
    for result in results.values():
        assert len(result.rows) and result.rows["ok"].all()
        assert (result.rows["attribution"].astype(str) == "all_agree").all(), result.name


@pytest.mark.slow
def test_a_factor_1001_is_caught_in_every_complex_case(library, results):
    assert factor_1001_caught(library, results) >= 40
