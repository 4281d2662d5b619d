"""The case language's rules: which syntax, names, constants and sizes an expression may use.

:func:`check` walks a parsed expression once and refuses anything outside the
whitelist, each refusal one line with the position, the offending text and
what to do (docs/case-language.md explains each rule). :mod:`verifier.cases.language`
parses, calls this, and interprets what passed.
"""

from __future__ import annotations

import ast
import difflib
import math
import numbers
import operator
import re
from typing import Any, Callable, Iterable

from ..errors import ExpressionError, UnknownFunctionError

MAX_LENGTH = 2000          # characters
MAX_NODES = 400            # syntax-tree nodes
MAX_DEPTH = 100            # nesting depth of the syntax tree (a chain a+b+c+... nests once per term)
MAX_STRING = 64            # characters of a string argument (einsum equations, reduction names)
# Arithmetic on two constants is exact on the symbolic side (Python ints, SymPy
# Rationals), so `9**9**9` would compute a 370-million-digit integer. Any
# constant result is limited to this many bits (about 5000 decimal digits).
MAX_CONSTANT_BITS = 1 << 14
MODULE_PREFIXES = frozenset({
    "torch", "F", "nn.functional", "torch.nn.functional", "torch.linalg",
    "torch.special", "torch.fft", "torch.masked",
})
RESERVED = frozenset({"torch", "F", "nn"})
# The short module names a case may write, and the module each one is.
MODULE_NAMES = {"F": "torch.nn.functional", "nn.functional": "torch.nn.functional"}
PROPERTIES = frozenset({"T", "mT", "real", "imag"})
# Keywords with which torch writes into an existing tensor (inplace=False is harmless).
WRITES_IN_PLACE = frozenset({"out", "inplace"})
LANGUAGE_DOC = "docs/case-language.md"
FUNCTION_LIST_HINT = (f"See {LANGUAGE_DOC} for what the case language allows "
                      "and `verifier functions` for the supported functions.")
SIZE_HINT = "Split the computation into a smaller expression, or use more inputs."

# What a string argument may contain: einsum equations ('ij,jk->ik'), names
# ('mean', 'batchmean', 'tanh', 'fro', '-inf'). No brackets, quotes or operators.
_SAFE_STRING = re.compile(r"[A-Za-z0-9_ ,.>\-]*")

BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.MatMult: operator.matmul,
}
CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_NUMBER_TYPES = (int, float, bool, complex)       # complex: 1j, 2.5j (docs/complex.md)


class Positions:
    """Turns ast positions (UTF-8 byte offsets in the stripped text) into what the user wrote."""

    def __init__(self, source: str) -> None:
        # Leading blanks would be an IndentationError; strip them but keep the offsets right.
        self.text = source.strip()
        lead = source[:len(source) - len(source.lstrip())]
        self.line_shift = lead.count("\n")
        self.col_shift = len(lead) - (lead.rfind("\n") + 1)
        self.multiline = "\n" in self.text
        self.lines = self.text.split("\n")

    def render(self, lineno: int, col: int, *, chars: bool = False) -> str:
        """``column C`` (or ``line L, column C`` for a multi-line expression), 1-based."""
        if not chars and 1 <= lineno <= len(self.lines):
            col = len(self.lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", errors="ignore"))
        if lineno == 1:
            col += self.col_shift
        if self.multiline or self.line_shift:
            return f"line {lineno + self.line_shift}, column {col + 1}"
        return f"column {col + 1}"

    def of(self, node: ast.AST) -> str:
        if getattr(node, "lineno", None) is None:
            return "an unknown position"
        if isinstance(node, ast.Attribute) and node.end_lineno is not None:
            # point at the name after the dot, not at the start of `x.y`
            end = node.end_col_offset - len(node.attr.encode("utf-8"))
            return self.render(node.end_lineno, end)
        return self.render(node.lineno, node.col_offset)

    def snippet(self, node: ast.AST, limit: int = 40) -> str:
        try:
            text = ast.get_source_segment(self.text, node) or ""
        except Exception:  # positions missing or inconsistent: the message is still useful without it
            text = ""
        text = " ".join(text.split())
        return text if len(text) <= limit else text[:limit - 3] + "..."


def dotted(node: ast.AST) -> str | None:
    """``torch.nn.functional`` for the matching Attribute chain, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def written_name(func: ast.AST) -> str | None:
    """The fully qualified name a call's function node writes, or None for a computed callee.

    ``exp`` stays bare (the supported function ``exp``), ``torch.X``,
    ``torch.linalg.X``, ``torch.special.X`` stay as written, ``F.X`` and
    ``nn.functional.X`` become ``torch.nn.functional.X``, and a method call
    ``x.X(...)`` is ``Tensor.X``: each names one torch callable.
    """
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        prefix = dotted(func.value)
        if prefix in MODULE_PREFIXES:
            return f"{MODULE_NAMES.get(prefix, prefix)}.{func.attr}"
        return f"Tensor.{func.attr}"
    return None


def refused(positions: Positions, node: ast.AST, what: str, hint: str) -> ExpressionError:
    snippet = positions.snippet(node)
    shown = f" (`{snippet}`)" if snippet else ""
    err = ExpressionError(f"{what} at {positions.of(node)} is not allowed in a case expression{shown}",
                          hint=hint)
    err.position = positions.of(node)
    return err


class _Checker:
    """Walks the tree once; every node type it accepts has a method, anything else is refused.

    ``arg=True`` marks a direct argument of a call (or an element of a tuple or
    list that is one): only there may strings, ``None``, tuples, lists and a
    comparison appear.
    """

    def __init__(self, known_functions, variables, positions: Positions, function_names) -> None:
        self.known = known_functions
        self.variables = variables
        self.positions = positions
        self.function_names = list(function_names) if function_names is not None else None
        self.used_variables: set[str] = set()
        self.used_functions: set[str] = set()
        self.nodes = 0

    def refuse(self, node: ast.AST, what: str, hint: str = FUNCTION_LIST_HINT) -> None:
        raise refused(self.positions, node, what, hint)

    def check(self, node: ast.AST, depth: int, arg: bool = False) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression has over {MAX_NODES} syntax nodes", hint=SIZE_HINT)
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels (at {self.positions.of(node)})",
                                  hint="Nest less deeply.")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            self.refuse(node, _describe(node))
        method(node, depth + 1, arg)

    def _Constant(self, node, depth, arg):
        value = node.value
        if isinstance(value, str) or value is None:
            if not arg:
                kind = "a string" if isinstance(value, str) else "None"
                self.refuse(node, f"{kind} outside a function's arguments",
                            hint="Strings and None are only for arguments such as einsum('ij->j', x) "
                                 "or reduction='sum'.")
            if isinstance(value, str) and len(value) > MAX_STRING:
                self.refuse(node, f"a string longer than {MAX_STRING} characters", hint=SIZE_HINT)
            if isinstance(value, str) and (not _SAFE_STRING.fullmatch(value) or "__" in value):
                # SymPy turns any string that reaches one of its constructors into
                # code through sympify; a string that cannot spell a call, a quote
                # or a dunder name is harmless even then.
                self.refuse(node, f"the string {value!r}",
                            hint="Strings may hold letters, digits, spaces and , . - > _ only "
                                 "(einsum equations, reduction names, modes such as 'tanh' or 'fro').")
            return
        if type(value) not in _NUMBER_TYPES:
            self.refuse(node, f"the constant {value!r}",
                        hint="Numbers are integers, floats or imaginary literals (2j); bytes and ... are not supported.")

    def _Name(self, node, depth, arg):
        if node.id in RESERVED:
            self.refuse(node, f"the module name '{node.id}' on its own",
                        hint="Call a function from it, e.g. torch.exp(x).")
        if self.variables is not None and node.id not in self.variables:
            known = ", ".join(sorted(self.variables)) or "none"
            err = ExpressionError(f"unknown name '{node.id}' at {self.positions.of(node)}",
                                  hint=f"The case's inputs are: {known}.")
            err.position = self.positions.of(node)
            raise err
        self.used_variables.add(node.id)

    def _BinOp(self, node, depth, arg):
        if type(node.op) not in BINOPS:
            self.refuse(node, f"the operator {type(node.op).__name__}",
                        hint="Operators are + - * / ** @ and unary minus.")
        self.check(node.left, depth)
        self.check(node.right, depth)

    def _UnaryOp(self, node, depth, arg):
        if type(node.op) not in UNARY:
            self.refuse(node, f"the unary operator {type(node.op).__name__}",
                        hint="Operators are + - * / ** @ and unary minus.")
        self.check(node.operand, depth)

    def _Compare(self, node, depth, arg):
        if len(node.ops) != 1 or type(node.ops[0]) not in CMPOPS:
            self.refuse(node, "a chained comparison or 'in'/'is'",
                        hint="Use one comparison, e.g. where(x > 0, x, 0).")
        if not arg:
            self.refuse(node, "a comparison outside a function's arguments",
                        hint="Comparisons build masks for functions, e.g. where(x > 0, x, 0).")
        self.check(node.left, depth)
        self.check(node.comparators[0], depth)

    def _Tuple(self, node, depth, arg):
        if not arg:
            kind = "a tuple" if isinstance(node, ast.Tuple) else "a list"
            self.refuse(node, f"{kind} outside a function's arguments",
                        hint="Tuples and lists are only for arguments, e.g. x.sum(dim=(0, 1)) or cat([x, y]).")
        for elt in node.elts:
            self.check(elt, depth, arg=True)

    _List = _Tuple

    def _Attribute(self, node, depth, arg):
        # Only reached outside call position: x.T, x.mT, x.real, x.imag.
        if node.attr not in PROPERTIES:
            self.refuse(node, f"the attribute '.{node.attr}'",
                        hint="Only .T, .mT, .real and .imag may be read; call functions as methods, e.g. x.sum(dim=0).")
        if dotted(node.value) in MODULE_PREFIXES | RESERVED:
            self.refuse(node, f"the attribute '.{node.attr}' of a module")
        self.check(node.value, depth)

    def _Call(self, node, depth, arg):
        func = node.func
        if isinstance(func, ast.Name):
            name = func.id
        elif isinstance(func, ast.Attribute):
            prefix = dotted(func.value)
            name = func.attr
            if prefix not in MODULE_PREFIXES:
                if prefix is not None and prefix.split(".")[0] in RESERVED:
                    self.refuse(func, f"the module path '{prefix}'",
                                hint="Use torch.X, F.X, torch.nn.functional.X, torch.linalg.X or torch.special.X.")
                self.check(func.value, depth)       # a method call: the receiver is an expression
        else:
            self.refuse(node, "calling the result of an expression")
            return
        if name.startswith("_"):
            self.refuse(func, f"the name '{name}'")
        name = written_name(func)
        if self.known is not None:
            self._known(func, name)
        self.used_functions.add(name)
        for a in node.args:
            if isinstance(a, ast.Starred):
                self.refuse(a, "argument unpacking with *", hint="Pass the arguments one by one.")
            self.check(a, depth, arg=True)
        for kw in node.keywords:
            if kw.arg is None:
                self.refuse(kw.value, "keyword unpacking with **", hint="Pass the keywords one by one.")
            if kw.arg.startswith("_"):
                self.refuse(kw.value, f"the keyword '{kw.arg}'", hint="Keywords are the function's own, e.g. dim=0.")
            if kw.arg in WRITES_IN_PLACE and not (kw.arg == "inplace" and isinstance(kw.value, ast.Constant)
                                                  and kw.value.value is False):
                # torch would write into a tensor that the exact side and the finite
                # differences also read (a case input, or a value used twice)
                self.refuse(kw.value, f"the keyword '{kw.arg}=' (it makes torch write into a tensor in place)",
                            hint="Drop it: write F.relu(x), not F.relu(x, inplace=True); torch.exp(x), "
                                 "not torch.exp(x, out=y). In-place methods such as (x * 2).add_(1) are checked.")
            self.check(kw.value, depth, arg=True)

    def _known(self, func, name):
        """Refuse a function without an entry, naming the closest supported one (or why it is refused)."""
        try:
            if self.known(name):
                return
            close = difflib.get_close_matches(name, self.function_names or [], n=1)
            suggestion = f" (did you mean '{close[0]}'?)" if close else ""
            message, hint = f"unknown function '{name}' at {self.positions.of(func)}{suggestion}", FUNCTION_LIST_HINT
        except UnknownFunctionError as exc:       # known_functions may say why a name is refused
            message, hint = f"{exc.message} (at {self.positions.of(func)})", exc.hint or FUNCTION_LIST_HINT
        err = UnknownFunctionError(message, hint=hint)
        err.position = self.positions.of(func)
        raise err

    def _Subscript(self, node, depth, arg):
        self.check(node.value, depth)
        self._index(node.slice, depth, top=True)

    def _index(self, node, depth, top=False):
        self.nodes += 1
        if isinstance(node, ast.Tuple) and top:
            for elt in node.elts:
                self._index(elt, depth)
        elif isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                if part is not None:
                    self._int_literal(part)
        elif isinstance(node, ast.Constant) and (node.value is None or node.value is Ellipsis
                                                 or type(node.value) is int):
            return
        elif isinstance(node, ast.UnaryOp):
            self._int_literal(node)
        elif isinstance(node, ast.Name):
            self.check(node, depth)                   # an index tensor or a mask input
        elif isinstance(node, ast.List):
            self._int_list(node)                      # x[[0, 2]]: a literal list of positions
        else:
            self.refuse(node, "this kind of subscript",
                        hint="Index with integer literals, slices, None, ..., a list of integers, "
                             "or an integer/bool input.")

    def _int_list(self, node):
        for elt in node.elts:
            self.nodes += 1
            if isinstance(elt, ast.List):
                self._int_list(elt)
            else:
                self._int_literal(elt)

    def _int_literal(self, node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        if not (isinstance(node, ast.Constant) and type(node.value) is int):
            self.refuse(node, "an index or slice bound that is not an integer literal",
                        hint="Write integers, e.g. x[1:3] or x[[0, 2]]; index with an input for computed indices.")


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "lambda", "ListComp": "a list comprehension", "GeneratorExp": "a generator",
        "DictComp": "a dict comprehension", "SetComp": "a set comprehension", "Dict": "a dict",
        "Set": "a set", "IfExp": "a conditional expression (use where(...))",
        "BoolOp": "'and'/'or' (use where(...))", "NamedExpr": "the walrus operator :=",
        "JoinedStr": "an f-string", "Await": "await", "Yield": "yield", "YieldFrom": "yield",
        "Starred": "unpacking", "Slice": "a slice outside indexing",
    }
    return names.get(type(node).__name__, f"the syntax '{type(node).__name__}'")


def _constant_bits(value: Any) -> int | None:
    """Bits of an exact constant (Python or SymPy number); None for anything else (tensors, arrays, symbols)."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, numbers.Integral):
        return int(value).bit_length()
    if isinstance(value, float):
        # the symbolic reading turns 1e300 into the exact integer 10**300
        return 60 + abs(math.frexp(value)[1]) if math.isfinite(value) else 64
    if getattr(value, "is_Rational", False):
        return int(value.p).bit_length() + int(value.q).bit_length()
    if getattr(value, "is_Number", False):
        return 64
    if isinstance(value, complex) or (getattr(value, "is_Add", False) and value.is_number):  # 2j; SymPy a + b*I
        return _constant_bits(max(abs(complex(value).real), abs(complex(value).imag)))
    return None


def _numerator(value: Any) -> int:
    if getattr(value, "is_Rational", False):
        return abs(int(value.p))
    if isinstance(value, numbers.Integral):
        return abs(int(value))
    try:
        return math.ceil(abs(float(value)))
    except (OverflowError, ValueError, TypeError):
        return 1 << 62


def constant_result_bits(op: type, left: Any, right: Any) -> int:
    """An upper estimate of the size of ``left op right`` for two constants (0 if it cannot grow)."""
    a, b = _constant_bits(left), _constant_bits(right)
    if a is None or b is None:
        return 0
    if op is ast.Pow:
        return 0 if a <= 1 else a * max(1, _numerator(right))
    if op in (ast.Mult, ast.Div):
        return a + b
    return max(a, b) + 1

def check(tree: ast.AST, positions: Positions, known_functions: Callable[[str], bool] | None,
          variables: frozenset[str] | None, function_names: Iterable[str] | None) -> tuple[frozenset, frozenset]:
    """Check a parsed expression's body; (names of the inputs it reads, names of the functions it calls)."""
    checker = _Checker(known_functions, variables, positions, function_names)
    checker.check(tree, depth=1)
    return frozenset(checker.used_variables), frozenset(checker.used_functions)
