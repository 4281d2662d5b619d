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

DOC = "docs/torch-findings.md"


@dataclass(frozen=True)
class TorchFact:
    name: str                         # the anchor in docs/torch-findings.md
    functions: frozenset[str]         # mirror names, as the case calls them (last dotted part)
    checks: frozenset[str]            # gradient | forward_mode | second_order
    dtypes: frozenset[str] | None     # None: every dtype
    text: str                         # one sentence: what torch does, with the measured number
    argument: str | None = None       # a regular expression the expression's text must match


_TRIGAMMA = ("torch's float64 trigamma (digamma's derivative, lgamma's and mvlgamma's second derivative) is "
             "accurate to about 5e-10 relative (median 4.5e-11), not to float64's rounding")

FACTS: tuple[TorchFact, ...] = (
    TorchFact("hardsigmoid-float32-sixth", frozenset({"hardsigmoid"}), frozenset({"gradient"}),
              frozenset({"float64"}),
              "torch's float64 hardsigmoid backward multiplies by float32's 1/6 (0.1666666716337204, "
              "relative error 3.0e-8)"),
    # trigamma is digamma's first derivative and lgamma's / mvlgamma's second: one fact, two entries
    TorchFact("trigamma-float64", frozenset({"digamma", "psi"}), frozenset({"gradient", "forward_mode"}),
              frozenset({"float64"}), _TRIGAMMA),
    TorchFact("trigamma-float64", frozenset({"mvlgamma", "multigammaln", "lgamma", "gammaln"}),
              frozenset({"second_order"}), frozenset({"float64"}), _TRIGAMMA),
    # polygamma(1, x) is trigamma itself (its forward value), polygamma(0, x)'s derivative is trigamma
    TorchFact("trigamma-float64", frozenset({"polygamma"}), frozenset({"forward"}), frozenset({"float64"}),
              _TRIGAMMA, argument=r"polygamma\(\s*1\s*,"),
    TorchFact("trigamma-float64", frozenset({"polygamma"}), frozenset({"gradient", "forward_mode"}),
              frozenset({"float64"}), _TRIGAMMA, argument=r"polygamma\(\s*0\s*,"),
    TorchFact("logcumsumexp-jvp-eps", frozenset({"logcumsumexp"}), frozenset({"forward_mode"}), None,
              "torch's logcumsumexp forward mode adds 1e-13 to the max-normalised running sum of exp, a "
              "relative error of 1e-13 / sum_{k<=j} exp(x_k - max x) (3.2e-6 on an OpInfo sample)"),
    TorchFact("scatter_reduce-prod-no-tangent", frozenset({"scatter_reduce"}), frozenset({"forward_mode"}), None,
              "torch's scatter_reduce(reduce='prod') has no forward-mode formula and silently returns an "
              "output without a tangent (J·u read as 0) instead of raising", argument=r"""['"]prod['"]"""),
    TorchFact("triangular_solve-jvp-unread-triangle", frozenset({"triangular_solve"}), frozenset({"forward_mode"}),
              None, "torch.triangular_solve's forward mode uses the whole tangent of A, also the triangle the "
              "function never reads (its backward and torch.linalg.solve_triangular's forward mode do not); "
              "declare A's structure (structure: upper_triangular / lower_triangular) to check the rest"),
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


def facts_for(case, dtype: str, check: str) -> list[TorchFact]:
    """The documented torch facts that explain a failed ``check`` of ``case`` in ``dtype``."""
    names = called(case)
    source = " ".join(str(r) for r in (case.torch_fn, case.sympy_fn) if hasattr(r, "functions"))
    return [f for f in FACTS
            if check in f.checks and (f.dtypes is None or dtype in f.dtypes) and names & f.functions
            and (f.argument is None or re.search(f.argument, source))]


def annotated(case, dtype: str, check: str, detail: str) -> str:
    """``detail`` followed by the name and sentence of every fact that explains it."""
    notes = [f" [known torch fact '{f.name}': {f.text}; see {DOC}]" for f in facts_for(case, dtype, check)]
    return detail + "".join(notes)
