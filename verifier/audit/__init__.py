"""``verifier audit``: PyTorch's own OpInfo sample inputs, for every differentiable op, against the exact reference.

``opdb`` imports torch's private OpInfo database (with a clear message when it
is missing or has changed), ``mapping`` says which OpInfo the case language
can express, ``samples`` turns one sample into a case, ``sweep`` plans and runs
them, ``table`` writes the per-op table, ``command`` is the CLI subcommand.
Nothing is imported here, so that the CLI can list the subcommand without importing torch:
``from verifier.audit.sweep import run_audit``.
"""
