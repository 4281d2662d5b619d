"""The commented YAML skeleton that ``verifier new NAME`` writes."""

from __future__ import annotations

import re

# The schema's case-name characters, starting with a letter or digit: also a safe file name (no '/', no
# leading '.' or '-', so no '../x', no hidden file, no option-like name).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

TEMPLATE = """\
# A verifier case file. Format: docs/case-format.md; schema: `verifier schema`.
# Check it with `verifier validate {path_hint}`, run it with `verifier run {path_hint}`.
defaults:
  dtypes: [float64, float32]        # float64, float32, float16, bfloat16
cases:
  - name: {name}                    # unique: letters, digits, . _ -
    description: one line saying what this case shows
    tags: [{family}]
    inputs:                         # ordered: name -> literal or spec
      x: [[1.0, 2.0], [3.0, 4.0]]   # a literal: the values (shape follows)
      w: {{shape: [2, 2], sample: normal, seed: 0}}   # random, seeded
      # c: {{shape: [2], fill: 0.5, requires_grad: false}}   # a constant
    forward: (x * w).exp().sum(dim=0)   # read with torch and symbolically
    # torch: ...                    # per-side overrides of forward
    # sympy: ...
    grad_output: ones               # v of y.backward(v): ones | random | a literal
    # tolerance: {{float32: {{rtol: 1e-4, atol: 1e-5}}}}
    # expect:
    #   grad_fn: SumBackward1
    #   grad: {{x: [[...]]}}
    #   error: "grad can be implicitly created only for scalar outputs"
"""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a new case (and its file), or None."""
    if NAME.fullmatch(name):
        return None
    return (f"'{name}' is not a case name: use letters, digits and . _ - only, starting with a letter or digit "
            f"(e.g. softmax.temperature), at most 200 characters")


def skeleton(name: str, path_hint: str | None = None) -> str:
    """A case file for a case called ``name``."""
    return TEMPLATE.format(name=name, family=name.split(".", 1)[0], path_hint=path_hint or f"cases/{name}.yaml")
