"""Documented torch facts: failures whose cause is torch's, named in the failure text.

A fact never changes a verdict and never widens a tolerance: the check still fails, because the
number torch returns is wrong or less accurate than the dtype's allowance. What the fact adds
is its name and a sentence pointing at ``docs/torch-findings.md``, where the measurement (a
40-digit mpmath value and finite differences against torch's number) is written down, so that a
reader of the report knows the cause and does not hunt a verifier bug.

A fact applies to one failed check of a case that calls one of its functions (the last part
of the written name: ``torch.special.digamma`` and ``x.digamma()`` are both ``digamma``), in
the listed dtypes, and, where given, only when the expression's text matches ``argument``
(scatter_reduce's ``'prod'``). ``tests/test_torch_facts.py`` re-measures each one against
torch and fails once torch fixes it, so that the entry can go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

DOC = "docs/torch-findings.md"


@dataclass(frozen=True)
class TorchFact:
    name: str                         # the anchor in docs/torch-findings.md
    functions: frozenset[str]         # mirror names, as the case calls them (last dotted part)
    checks: frozenset[str]            # gradient | forward_mode | second_order
    dtypes: frozenset[str] | None     # None: every dtype
    text: str                         # one sentence: what torch does, with the measured number
    argument: str | None = None       # a regular expression the expression's text must match
    #: the largest relative error of the failed check that the fact explains (its measured size with a
    #: margin); a larger one is another error (a wrong gradient of the same function) and gets no note.
    #: None: the fact's error has no fixed size (it depends on the point or on the structure).
    max_rel_err: float | None = None
    #: the fact shows only where some input is at least this large in magnitude (None: anywhere)
    min_input: float | None = None
    #: the fact is torch returning inf/nan where the exact value is finite: it names a check whose outcome is
    #: non_finite, and only such a check (a fact about a wrong number never names a non-finite one, nor back)
    non_finite: bool = False


_TRIGAMMA = ("torch's float64 trigamma (digamma's derivative, lgamma's and mvlgamma's second derivative) is "
             "accurate to about 5e-10 relative (median 4.5e-11), not to float64's rounding")

#: hardsigmoid: (f32(1/6) - 1/6) / (1/6) = 2.98e-8 on every element in (-3, 3), plus float64 rounding.
HARDSIGMOID_MAX = 4e-8
#: trigamma: 4.86e-10 largest relative error against 40-digit mpmath on 800 points in [0.55, 12]
#: (docs/torch-findings.md); a factor 4 above it for points outside that sample.
TRIGAMMA_MAX = 2e-9

FACTS: tuple[TorchFact, ...] = (
    # forward mode too: torch's hardsigmoid jvp is its backward formula (2.98e-8 on the same elements)
    TorchFact("hardsigmoid-float32-sixth", frozenset({"hardsigmoid"}), frozenset({"gradient", "forward_mode"}),
              frozenset({"float64"}),
              "torch's float64 hardsigmoid backward multiplies by float32's 1/6 (0.1666666716337204, "
              "relative error 3.0e-8)", max_rel_err=HARDSIGMOID_MAX),
    # trigamma is digamma's first derivative and lgamma's / mvlgamma's second: one fact, two entries
    TorchFact("trigamma-float64", frozenset({"digamma", "psi"}), frozenset({"gradient", "forward_mode"}),
              frozenset({"float64"}), _TRIGAMMA, max_rel_err=TRIGAMMA_MAX),
    TorchFact("trigamma-float64", frozenset({"mvlgamma", "multigammaln", "lgamma", "gammaln"}),
              frozenset({"second_order"}), frozenset({"float64"}), _TRIGAMMA, max_rel_err=TRIGAMMA_MAX),
    # polygamma(1, x) is trigamma itself (its forward value), polygamma(0, x)'s derivative is trigamma
    TorchFact("trigamma-float64", frozenset({"polygamma"}), frozenset({"forward"}), frozenset({"float64"}),
              _TRIGAMMA, argument=r"polygamma\(\s*1\s*,", max_rel_err=TRIGAMMA_MAX),
    TorchFact("trigamma-float64", frozenset({"polygamma"}), frozenset({"gradient", "forward_mode"}),
              frozenset({"float64"}), _TRIGAMMA, argument=r"polygamma\(\s*0\s*,", max_rel_err=TRIGAMMA_MAX),
    TorchFact("logcumsumexp-jvp-eps", frozenset({"logcumsumexp"}), frozenset({"forward_mode"}), None,
              "torch's logcumsumexp forward mode adds 1e-13 to the max-normalised running sum of exp, a "
              "relative error of 1e-13 / sum_{k<=j} exp(x_k - max x) (3.2e-6 on an OpInfo sample)"),
    TorchFact("scatter_reduce-prod-no-tangent", frozenset({"scatter_reduce"}), frozenset({"forward_mode"}), None,
              "torch's scatter_reduce(reduce='prod') has no forward-mode formula and silently returns an "
              "output without a tangent (J·u read as 0) instead of raising", argument=r"""['"]prod['"]"""),
    # 1.45 ulps of the scale per unit of |x|: above float32's rtol (168 ulps) past |x| ~ 116, hence 100; float64
    # shows it only past |x| ~ 2.5e5 (its rtol/eps is larger); the float64 run of the same sample
    # checks the gradient to its own allowance, so a wrong gradient there stays unexplained
    TorchFact("logcumsumexp-backward-log-space", frozenset({"logcumsumexp"}), frozenset({"gradient", "second_order"}),
              frozenset({"float32", "float16", "bfloat16"}),
              "torch's logcumsumexp backward works in log space, exp(logcumsumexp(log|g| - y) + x), so the rounding "
              "of the output y (|y|·eps absolute) becomes a relative error of the gradient: 8.6e-4 of the scale "
              "|J|ᵀ|v| in float32 at |x| = 1e4 (14,500 ulps), where a float32 algorithm without log-space "
              "differences is good to 10 ulps", min_input=100.0),
    TorchFact("triangular_solve-jvp-unread-triangle", frozenset({"triangular_solve"}), frozenset({"forward_mode"}),
              None, "torch.triangular_solve's forward mode uses the whole tangent of A, also the triangle the "
              "function never reads (its backward and torch.linalg.solve_triangular's forward mode do not); "
              "declare A's structure (structure: upper_triangular / lower_triangular) to check the rest"),
    # measured on op_db's sample (inputs 0.077..2.7): 7.0e-6 relative (check_max_rel_err) against the exact H·w, where
    # the same products as a chain of multiplications in float32 are good to 7e-7; a factor 14 above it for other points
    TorchFact("scatter_reduce-prod-double-backward", frozenset({"scatter_reduce"}), frozenset({"second_order"}),
              frozenset({"float32", "float16", "bfloat16"}),
              "torch's scatter_reduce(reduce='prod') backward divides the result by each input (result / x), so its "
              "double backward subtracts terms of size result / x² that cancel: float32 H·w 3.3e-5 relative on an "
              "element of 0.029 of the OpInfo sample, where the same products multiplied out in float32 are good "
              "to 7e-7", argument=r"""['"]prod['"]""", max_rel_err=1e-4),
    TorchFact("logaddexp-double-backward-nan-at-minus-inf", frozenset({"logaddexp"}), frozenset({"second_order"}),
              None, "torch's logaddexp double backward is nan where an operand is -inf (a masked-out one): it computes "
              "exp(a - b) / (1 + exp(a - b))² as inf / inf, also for a zero incoming gradient, where the exact "
              "second derivative is 0", non_finite=True),
    TorchFact("div-trunc-rounded-quotient", frozenset({"div", "divide"}), frozenset({"forward"}), None,
              "torch's div(rounding_mode='trunc') truncates the rounded quotient fl(a / b): where a / b lies "
              "within half an ulp of an integer n, on the side of 0 (1 / 0.1 = 9.99999999999999944...), it "
              "returns n where the exact trunc is one step closer to 0 ('floor' goes through fmod)",
              argument=r"""rounding_mode\s*=\s*['"]trunc['"]"""),
)


def called(case) -> frozenset[str]:
    """The functions a case's expressions call, by the last part of their written name."""
    names = set()
    for reading in (case.torch_fn, case.sympy_fn):
        names.update(n.rsplit(".", 1)[-1] for n in getattr(reading, "functions", ()))
    return frozenset(names)


def facts_for(case, dtype: str, check: str, rel_err: float | None = None,
              non_finite: bool = False) -> list[TorchFact]:
    """The documented torch facts that explain a failed ``check`` of ``case`` in ``dtype`` whose largest
    relative error is ``rel_err`` (a fact with a measured size explains no larger error, nor an unknown one);
    a ``non_finite`` check only by a fact about torch's inf/nan, a wrong number only by the others."""
    names = called(case)
    source = " ".join(str(r) for r in (case.torch_fn, case.sympy_fn) if hasattr(r, "functions"))
    return [f for f in FACTS
            if check in f.checks and (f.dtypes is None or dtype in f.dtypes) and names & f.functions
            and f.non_finite == non_finite
            and (f.argument is None or re.search(f.argument, source))
            and (f.max_rel_err is None or (rel_err is not None and rel_err <= f.max_rel_err))
            and (f.min_input is None or _largest_input(case) >= f.min_input)]


def _largest_input(case) -> float:
    """The largest finite |value| of the case's floating inputs (0 when it has none)."""
    largest = 0.0
    for spec in case.inputs:
        if spec.dtype is None:
            values = np.abs(np.asarray(spec.values(), dtype=np.float64))
            values = values[np.isfinite(values)]
            largest = max(largest, float(values.max()) if values.size else 0.0)
    return largest


def annotated(case, dtype: str, check: str, detail: str, rel_err: float | None = None,
              non_finite: bool = False) -> str:
    """``detail`` followed by the name and sentence of every fact that explains it (see :func:`facts_for`)."""
    notes = [f" [known torch fact '{f.name}': {f.text}; see {DOC}]"
             for f in facts_for(case, dtype, check, rel_err, non_finite)]
    return detail + "".join(notes)
