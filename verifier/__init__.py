"""verifier: prove PyTorch's gradients right.

Each case is defined symbolically (SymPy); its exact Jacobian and Jᵀv are
compared with ``y.backward(v)`` and with finite differences, and the
discrepancies are reported as pandas tables.

The public surface is what this module re-exports; everything else is
internal and may change.
"""

from .api import ResultTables as ResultTables, assert_gradients as assert_gradients
from .case import Case as Case, InputSpec as InputSpec, Tolerance as Tolerance
from .compare import DEFAULT_TOLERANCES as DEFAULT_TOLERANCES
from .errors import (
    CaseError as CaseError,
    CaseFileError as CaseFileError,
    ExpressionError as ExpressionError,
    GradientMismatch as GradientMismatch,
    SymbolicError as SymbolicError,
    UnknownFunctionError as UnknownFunctionError,
    VerifierError as VerifierError,
)
from .loading import load_file as load_file, load_paths as load_paths
from .registry import make_case as make_case, register as register, registered as registered
from .runner import CaseResult as CaseResult, Runner as Runner

__all__ = [
    "Case", "InputSpec", "Tolerance", "DEFAULT_TOLERANCES",
    "VerifierError", "CaseError", "CaseFileError", "ExpressionError", "UnknownFunctionError",
    "SymbolicError", "GradientMismatch",
    "load_file", "load_paths", "make_case", "register", "registered", "Runner", "CaseResult",
    "assert_gradients", "ResultTables",
]
__version__ = "0.1.0"
