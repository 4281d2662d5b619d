"""verifier: prove PyTorch's gradients right.

Each case is defined symbolically (SymPy); its exact Jacobian and Jᵀv are
compared with ``y.backward(v)`` and with finite differences, and the
discrepancies are reported as pandas tables.

The public surface is what this module re-exports; everything else is
internal and may change.
"""

import os as _os
import sys as _sys

if (_sys.argv[:1] == ["-m"] and _sys.path and not _sys.flags.safe_path
        and _os.path.realpath(_sys.path[0] or _os.curdir) == _os.path.realpath(_os.getcwd())):
    # `python -m verifier` put the working directory first on sys.path (argv[0] is "-m" while the module is
    # located); a yaml.py or sympy.py lying there would shadow the real module, and case folders are untrusted.
    # Drop it before anything else is imported (only os and sys, loaded at start-up, are used here), as the
    # console script and `python -P` never add it. Workers get a safe path of their own (run/launch.py).
    del _sys.path[0]
del _os, _sys

from .api import ResultTables as ResultTables
from .api import assert_gradients as assert_gradients
from .cases.case import Case as Case
from .cases.case import InputSpec as InputSpec
from .cases.case import Tolerance as Tolerance
from .cases.loading import load_file as load_file
from .cases.loading import load_paths as load_paths
from .cases.registry import make_case as make_case
from .cases.registry import register as register
from .cases.registry import registered as registered
from .errors import CaseError as CaseError
from .errors import CaseFileError as CaseFileError
from .errors import ExpressionError as ExpressionError
from .errors import GradientMismatch as GradientMismatch
from .errors import SymbolicError as SymbolicError
from .errors import UnknownFunctionError as UnknownFunctionError
from .errors import VerifierError as VerifierError
from .run.runner import CaseResult as CaseResult
from .run.runner import Runner as Runner
from .verdict.compare import DEFAULT_TOLERANCES as DEFAULT_TOLERANCES

__all__ = [
    "Case", "InputSpec", "Tolerance", "DEFAULT_TOLERANCES",
    "VerifierError", "CaseError", "CaseFileError", "ExpressionError", "UnknownFunctionError",
    "SymbolicError", "GradientMismatch",
    "load_file", "load_paths", "make_case", "register", "registered", "Runner", "CaseResult",
    "assert_gradients", "ResultTables",
]
__version__ = "0.1.0"
