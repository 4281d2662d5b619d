"""verifier: prove PyTorch's gradients right.

Each case is defined symbolically (SymPy); its exact Jacobian and Jᵀv are
compared with ``y.backward(v)`` and with finite differences, and the
discrepancies are reported as pandas tables.

The public surface is what this module re-exports; everything else is
internal and may change.
"""

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
