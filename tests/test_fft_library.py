"""torch.fft: every differentiable function of the namespace is mirrored (from the DFT) and has a built-in case
in cases/fft.yaml (or cases/complex.yaml) that passes in both its dtypes and fails when its gradient is off by a
factor 1.001. The planted fft twins (tests/corpus/fft.py) run in tests/test_complex_corpus.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from corpus.complex import COMPLEX_DTYPES
from test_complex_library import factor_1001_caught, load_library, run_library

from verifier import load_file
from verifier.exact import mirror

ROOT = Path(__file__).resolve().parent.parent
#: torch.fft's public functions without a differentiable tensor input (they build frequency grids)
NOT_DIFFERENTIABLE = {"fftfreq", "rfftfreq"}
#: the namespace's public functions (its __all__ is incomplete; dir also lists its imports: Tensor, torch, ...)
FUNCTIONS = sorted(n for n in dir(torch.fft) if not n.startswith("_") and n not in NOT_DIFFERENTIABLE
                   and type(getattr(torch.fft, n)).__name__ == "builtin_function_or_method")


@pytest.fixture(scope="module")
def library():
    return load_library(ROOT / "cases" / "fft.yaml")


@pytest.fixture(scope="module")
def results(library):
    return run_library(library)


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
    """Every run has a nonzero exact gradient, so every one of them must catch the factor."""
    assert factor_1001_caught(library, results) == len(results)
