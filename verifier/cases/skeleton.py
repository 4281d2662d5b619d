"""The commented YAML skeleton that ``verifier new NAME`` writes."""

from __future__ import annotations

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


def skeleton(name: str) -> str:
    """A case file for a case called ``name``."""
    return TEMPLATE.format(name=name, family=name.split(".", 1)[0], path_hint=f"cases/{name}.yaml")
