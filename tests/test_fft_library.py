"""torch.fft: every differentiable function of the namespace is mirrored (from the DFT) and has a built-in case
in cases/fft.yaml (or cases/complex.yaml) that passes in both its dtypes and fails when its gradient is off by a
factor 1.001; the planted fft twins (tests/corpus/fft.py) are caught, their correct twins pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus.fft import COMPLEX_DTYPES, FFT_CORPUS, FFT_KINDS
from corpus.registry import assert_caught, assert_passes
from test_library import ScaleGrad  # the identity whose backward is off by 1.001

from verifier import Runner, load_file
from verifier.exact import mirror
from verifier.torch_side.autograd import torch_callable

ROOT = Path(__file__).resolve().parent.parent
#: torch.fft's public functions without a differentiable tensor input (they build frequency grids)
NOT_DIFFERENTIABLE = {"fftfreq", "rfftfreq"}
#: the namespace's public functions (its __all__ is incomplete; dir also lists its imports: Tensor, torch, ...)
FUNCTIONS = sorted(n for n in dir(torch.fft) if not n.startswith("_") and n not in NOT_DIFFERENTIABLE
                   and type(getattr(torch.fft, n)).__name__ == "builtin_function_or_method")


@pytest.fixture(scope="module")
def library():
    loaded = load_file(ROOT / "cases" / "fft.yaml")
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return loaded.cases


@pytest.fixture(scope="module")
def results(library):
    runner = Runner(cache=False)
    return {(c.name, d): runner.run(c, d) for c in library for d in c.dtypes}


def _used(cases) -> set[str]:
    return {mirror.resolve(n).qualname for c in cases for n in c.torch_fn.functions if mirror.known(n)}


def test_the_namespace_is_listed_and_every_function_is_mirrored_with_its_torch_callable():
    assert len(FUNCTIONS) == 20, FUNCTIONS
    for name in FUNCTIONS:
        entry = mirror.resolve(f"torch.fft.{name}")
        assert entry.torch is getattr(torch.fft, name) and entry.qualname == f"torch.fft.{name}"


def test_every_function_has_a_case_in_both_complex_dtypes(library):
    complex_lib = load_file(ROOT / "cases" / "complex.yaml").cases
    covered = _used(c for c in [*library, *complex_lib] if set(COMPLEX_DTYPES) <= set(c.dtypes))
    assert not {f"torch.fft.{f}" for f in FUNCTIONS} - covered
    assert all(c.family == "fft" and c.name.startswith("fft.") for c in library)


def test_every_fft_case_passes(results):
    failed = {k: r.message for k, r in results.items() if r.status != "pass"}
    assert not failed, failed
    for (name, dtype), result in results.items():
        assert len(result.rows) and result.rows["ok"].all(), (name, dtype)
        assert (result.rows["attribution"].astype(str) == "all_agree").all(), (name, dtype)


def test_the_ignored_parts_of_a_half_spectrum_get_an_exact_zero_gradient(results):
    """irfft to an even n reads Re X_0 and Re X_{n/2} only: their imaginary parts do not change the output,
    and torch's gradient there is 0, as the exact side's (nothing is projected or tolerated away)."""
    rows = results[("fft.irfft_default_n", "complex128")].rows
    for element in (0, 3):                                   # X_0 and X_{n/2}, n = 6
        assert rows["exact_imag"].iloc[element] == 0.0 and abs(rows["autograd_imag"].iloc[element]) < 1e-15
    trimmed = results[("fft.irfft_trims_the_input", "complex128")].rows
    assert (trimmed[["exact", "exact_imag"]].iloc[3:] == 0).all().all()


@pytest.mark.slow
def test_a_factor_1001_is_caught_in_every_fft_case(library, results):
    runner, caught = Runner(cache=False), 0
    for case in library:
        original = torch_callable(case)
        wrong = dataclasses.replace(case, torch_fn=lambda *t, f=original: ScaleGrad.apply(f(*t)))
        for dtype in case.dtypes:
            exact = results[(case.name, dtype)].rows[["exact", "exact_imag"]].to_numpy(dtype=float)
            assert np.max(np.abs(np.nan_to_num(exact)), initial=0.0) > 0, (case.name, dtype)
            r = runner.run(wrong, dtype)
            assert r.status == "fail" and any(c.name == "gradient" and not c.ok for c in r.checks), \
                (case.name, dtype, r.message)
            caught += 1
    assert caught == len(results)


ENTRIES = [pytest.param(entry, id=entry.id) for entry in FFT_CORPUS]


def test_every_fft_bug_kind_is_planted():
    assert {e.kind for e in FFT_CORPUS} == set(FFT_KINDS)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_planted_fft_bug_is_caught(entry, dtype):
    assert_caught(Runner(cache=False).run(entry.case(entry.buggy, dtypes=(dtype,)), dtype), entry.bug)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_correct_fft_twin_passes(entry, dtype):
    assert_passes(Runner(cache=False).run(entry.case(entry.correct, dtypes=(dtype,)), dtype))
