"""The case language: parse an expression once, check it, evaluate it twice.

A case expression is Python *expression* syntax, parsed with :mod:`ast` and
checked node by node against a whitelist before anything runs. It is then
interpreted by walking the tree with a :class:`Reading` (torch tensors or
symbolic element arrays). Nothing here hands a string to ``eval``, ``exec``,
``sympify`` or ``parse_expr``: those evaluate arbitrary code, and case files
are shared between people. docs/case-language.md explains each rule;
:mod:`verifier.cases.language_check` enforces them.

Allowed: input names, numbers, ``+ - * / ** @``, unary minus, calls of the
supported functions spelled ``X``, ``torch.X``, ``F.X``,
``torch.nn.functional.X``, ``torch.linalg.X``, ``torch.special.X`` or as a
method ``x.X(...)``, keyword arguments, ``x.T``/``x.mT``, and tensor indexing
with integer literals, slices, ``None``, ``...`` and index inputs. Strings,
``None``, tuples, lists and one comparison (``where(x > 0, ...)``) may appear
only as a function's arguments, never as operands: that keeps ``'a' * 10**9``
and ``[x] * 10**9`` out, and gives both readings the same meaning.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..errors import ExpressionError

# the limits and module prefixes are re-exported: they are part of the language's public description
from .characters import BIDI_CONTROLS, describe, first_non_ascii
from .language_check import (
    BINOPS,
    CMPOPS,
    MAX_CONSTANT_BITS,
    MAX_LENGTH,
    MODULE_PREFIXES,
    SIZE_HINT,
    UNARY,
    Positions,
    check,
    constant_result_bits,
    dotted,
    refused,
    written_name,
)


@dataclass(frozen=True)
class Expression:
    """A checked case expression: its source, tree, and the names it uses."""

    source: str
    tree: ast.AST = field(repr=False, compare=False)
    variables: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()   # as written, fully qualified (language_check.written_name)

    def __str__(self) -> str:
        return self.source

    def evaluate(self, reading: "Reading") -> Any:
        return _Interpreter(reading, Positions(self.source)).visit(self.tree.body)


class Reading:
    """How an expression's operations are carried out: torch or symbolic.

    Subclasses supply ``variables``, ``call`` and, when they differ from plain
    Python, ``literal``, ``binop`` and ``compare``.
    """

    variables: Mapping[str, Any] = {}

    def literal(self, value: Any) -> Any:
        return value

    def call(self, name: str, args: list, kwargs: dict) -> Any:  # pragma: no cover
        raise NotImplementedError

    def binop(self, op: type, left: Any, right: Any) -> Any:
        return BINOPS[op](left, right)

    def compare(self, op: type, left: Any, right: Any) -> Any:
        return CMPOPS[op](left, right)

    def unary(self, op: type, operand: Any) -> Any:
        return UNARY[op](operand)

    def prop(self, obj: Any, name: str) -> Any:
        return getattr(obj, name)

    def index(self, obj: Any, key: Any) -> Any:
        return obj[key]


def parse(source: str, *, known_functions: Callable[[str], bool] | None = None,
          variables: frozenset[str] | None = None,
          function_names: Iterable[str] | None = None) -> Expression:
    """Parse and check ``source``; raise :class:`ExpressionError` on anything not allowed.

    ``known_functions(name)`` says whether a called name exists; ``variables``
    are the names the expression may read (the case's inputs);
    ``function_names``, when given, feeds the "did you mean" of an unknown
    function. Every refusal names the construct and its position.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}",
                              hint="Quote the expression in YAML if it starts with a special character.")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(source)} characters long, over the limit of {MAX_LENGTH}",
                              hint=SIZE_HINT)
    positions = Positions(source)
    if (odd := first_non_ascii(positions.text)) is not None:
        line, col, char = odd
        where = positions.render(line, col, chars=True)
        if char in BIDI_CONTROLS:
            raise ExpressionError(f"the invisible bidirectional control character {describe(char)} at {where}: "
                                  f"it makes the expression display in another order than it runs",
                                  hint="Remove it.")
        raise ExpressionError(f"the non-ASCII character {describe(char)} at {where}: it may look like an "
                              f"ASCII letter or sign, but it is another character",
                              hint="Retype it in ASCII; names, operators and strings in expressions are ASCII.")
    try:
        with warnings.catch_warnings():
            # "invalid escape sequence" inside a string argument is not the user's problem here
            warnings.simplefilter("ignore")
            tree = ast.parse(positions.text, mode="eval")
    except SyntaxError as exc:
        where = positions.render(exc.lineno or 1, (exc.offset or 1) - 1, chars=True)
        raise ExpressionError(f"invalid expression syntax at {where}: {exc.msg}",
                              hint="Write one Python expression, e.g. `(3*(x+2)**2).mean()`.") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"expression cannot be parsed ({type(exc).__name__}: {exc})",
                              hint="Nest less deeply and use only printable characters.") from None
    used_variables, used_functions = check(tree.body, positions, known_functions, variables, function_names)
    return Expression(source, tree, used_variables, used_functions)


class _Interpreter:
    """Walks a checked tree; every operation goes through the Reading."""

    def __init__(self, reading: Reading, positions: Positions) -> None:
        self.r = reading
        self.positions = positions

    def visit(self, node: ast.AST) -> Any:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Constant(self, node):
        return self.r.literal(node.value)

    def _Name(self, node):
        return self.r.variables[node.id]

    def _BinOp(self, node):
        left, right = self.visit(node.left), self.visit(node.right)
        bits = constant_result_bits(type(node.op), left, right)
        if bits > MAX_CONSTANT_BITS:
            raise refused(self.positions, node,
                           f"constant arithmetic whose result has about {int(bits * 0.30103)} digits",
                           hint=f"Keep constants under {int(MAX_CONSTANT_BITS * 0.30103)} digits.")
        return self.r.binop(type(node.op), left, right)

    def _UnaryOp(self, node):
        return self.r.unary(type(node.op), self.visit(node.operand))

    def _Compare(self, node):
        return self.r.compare(type(node.ops[0]), self.visit(node.left), self.visit(node.comparators[0]))

    def _Tuple(self, node):
        return tuple(self.visit(e) for e in node.elts)

    def _List(self, node):
        return [self.visit(e) for e in node.elts]

    def _Attribute(self, node):
        return self.r.prop(self.visit(node.value), node.attr)

    def _Call(self, node):
        func = node.func
        args = [self.visit(a) for a in node.args]
        if isinstance(func, ast.Attribute) and dotted(func.value) not in MODULE_PREFIXES:
            args.insert(0, self.visit(func.value))   # method call: receiver first
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords}
        return self.r.call(written_name(func), args, kwargs)

    def _Subscript(self, node):
        return self.r.index(self.visit(node.value), self._key(node.slice))

    def _key(self, node):
        if isinstance(node, ast.Tuple):
            return tuple(self._key(e) for e in node.elts)
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self._int(p) for p in (node.lower, node.upper, node.step)]
            return slice(*parts)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            return self._int(node)
        if isinstance(node, ast.List):
            return [self._key(e) for e in node.elts]
        return self.r.variables[node.id]

    @staticmethod
    def _int(node):
        if isinstance(node, ast.UnaryOp):
            return -node.operand.value
        return node.value
