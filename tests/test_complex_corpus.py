"""The complex planted-bug twins (tests/corpus/complex.py, and torch.fft's in tests/corpus/fft.py): every wrong
backward fails in complex64 and complex128, every right twin passes. benchmarks/complex_vs_gradcheck.py puts gradcheck beside them."""

from __future__ import annotations

import pytest
from corpus.complex import COMPLEX_CORPUS, COMPLEX_DTYPES, COMPLEX_KINDS
from corpus.fft import FFT_CORPUS, FFT_KINDS
from corpus.registry import assert_caught, assert_passes

from verifier import Runner

ENTRIES = [pytest.param(entry, id=entry.id) for entry in COMPLEX_CORPUS + FFT_CORPUS]   # fft: tests/corpus/fft.py


def test_every_kind_the_issue_names_is_planted_at_least_once():
    assert {e.kind for e in COMPLEX_CORPUS} == set(COMPLEX_KINDS)
    assert {e.kind for e in FFT_CORPUS} == set(FFT_KINDS)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_planted_complex_bug_is_caught(entry, dtype):
    assert_caught(Runner(cache=False).run(entry.case(entry.buggy, dtypes=(dtype,)), dtype), entry.bug)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_correct_complex_twin_passes(entry, dtype):
    assert_passes(Runner(cache=False).run(entry.case(entry.correct, dtypes=(dtype,)), dtype))


@pytest.mark.parametrize("entry", ENTRIES)
def test_gradcheck_sees_the_same_twins(entry):
    """The benchmark's comparison is sound: the twins' tensors build, gradcheck passes the right one."""
    import torch

    def tensors():      # complex128, but an input declared `dtype: real` (rfft's signal) stays float64
        specs = entry.case(entry.correct).inputs
        return tuple(t.real.detach().requires_grad_(t.requires_grad) if s.number == "real" else t
                     for t, s in zip(entry.tensors(torch.complex128), specs))

    assert all(t.is_complex() or t.dtype == torch.float64 for t in tensors()) and tensors()[0].requires_grad
    assert torch.autograd.gradcheck(entry.correct.apply, tensors(), fast_mode=True)
    assert not torch.autograd.gradcheck(entry.buggy.apply, tensors(), fast_mode=True, raise_exception=False)
