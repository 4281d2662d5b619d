"""The verifier's one exception family.

Two kinds of problem are kept apart (DESIGN, idea 5):

* ``CaseError`` and its subclasses: something is wrong with a case (its file,
  its expression, a function with no symbolic mirror). These are *misuse*:
  the message says where (file, case, position) and what to do.
* ``GradientMismatch``: a check ran and the gradient was wrong. That is a
  *result*; only the assert API raises it.
"""

from __future__ import annotations


class VerifierError(Exception):
    """Base class of every error the verifier raises on purpose."""


class CaseError(VerifierError, ValueError):
    """A case cannot be loaded, checked or evaluated as written.

    ``file`` and ``case`` locate the problem; ``hint`` says what to do.
    ``str()`` renders one line: ``file:line: case 'name': what. hint``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        case: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.case = case
        self.hint = hint
        super().__init__(self._render())

    def located(self, *, file=None, line=None, case=None) -> "CaseError":
        """Return a copy that also knows where it happened (fields already set win)."""
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        err.file = self.file or file
        err.line = self.line or line
        err.case = self.case or case
        Exception.__init__(err, err._render())
        return err

    def _render(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        who = f"case '{self.case}': " if self.case else ""
        hint = ""
        if self.hint:
            # "what. hint": one sentence each, whether or not the message ends in a stop
            stop = "" if self.message.rstrip().endswith((".", "?", "!", ":")) else "."
            hint = f"{stop} {self.hint}"
        text = f"{where}{who}{self.message}{hint}"
        # one line whatever a case file put into a name or a key (YAML strings may hold line breaks)
        return text.translate(_ONE_LINE)


_ONE_LINE = {ord(c): " " for c in "\r\n\t\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


class CaseFileError(CaseError):
    """The YAML file itself is malformed or does not follow the case format."""


class ExpressionError(CaseError):
    """A case expression uses syntax or a name the case language does not allow."""


class UnknownFunctionError(ExpressionError):
    """An expression calls a function that has no symbolic mirror."""


class SymbolicError(CaseError):
    """The symbolic side could not derive or evaluate the case."""


class Refused:
    """Marks a :class:`CaseError` that is the verifier *declining* a case on purpose (a call form, an
    argument or a point its exact side does not support, said in the message), not a crash.

    ``verifier audit`` counts such a run as refused with its reason; any other error stays unexplained.
    Raise :class:`RefusedCall` or :class:`RefusedPoint`, never this class alone.
    """


class RefusedCall(Refused, ExpressionError):
    """A call form or argument the mirror deliberately does not support (``mirror._arrays.unsupported``)."""


class RefusedPoint(Refused, SymbolicError):
    """A point the exact side deliberately declines (a rank-deficient matrix, a gauge-dependent output, ...)."""


class GradientMismatch(VerifierError, AssertionError):
    """A gradient check failed; raised by :func:`verifier.assert_gradients`.

    ``tables`` holds the result tables (pandas DataFrames) of the failed check.
    """

    def __init__(self, message: str, tables=None) -> None:
        super().__init__(message)
        self.tables = tables
