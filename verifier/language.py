"""The case language: parse an expression once, check it, evaluate it twice.

A case expression is Python *expression* syntax, parsed with :mod:`ast` and
checked node by node against a whitelist before anything runs. It is then
interpreted by walking the tree with a :class:`Reading` (torch tensors or
symbolic element arrays). Nothing here hands a string to ``eval``, ``exec``,
``sympify`` or ``parse_expr``: those evaluate arbitrary code, and case files
are shared between people.

Allowed: input names, numbers, strings and ``None`` as arguments, ``+ - * / **
@``, unary minus, one comparison (inside ``where``), calls of the supported
functions spelled ``X``, ``torch.X``, ``F.X``, ``torch.nn.functional.X``,
``torch.linalg.X``, ``torch.special.X`` or as a method ``x.X(...)``, keyword
arguments, tuples and lists, ``x.T``/``x.mT``, and tensor indexing.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import ExpressionError, UnknownFunctionError

MAX_LENGTH = 2000          # characters
MAX_NODES = 400            # syntax-tree nodes
MAX_DEPTH = 100         # nesting depth of the syntax tree (a chain a+b+c+... nests once per term)
MODULE_PREFIXES = frozenset({
    "torch", "F", "nn.functional", "torch.nn.functional", "torch.linalg",
    "torch.special", "torch.fft",
})
RESERVED = frozenset({"torch", "F", "nn"})
PROPERTIES = frozenset({"T", "mT"})
FUNCTION_LIST_HINT = "See 'Functions' in README.md (or `verifier functions`) for what is supported."

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.MatMult: operator.matmul,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_CONST_TYPES = (int, float, bool, str, type(None))


@dataclass(frozen=True)
class Expression:
    """A checked case expression: its source, tree, and the names it uses."""

    source: str
    tree: ast.AST = field(repr=False, compare=False)
    variables: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()   # as called, before alias resolution

    def __str__(self) -> str:
        return self.source

    def evaluate(self, reading: "Reading") -> Any:
        return _Interpreter(reading).visit(self.tree.body)


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
        return _BINOPS[op](left, right)

    def compare(self, op: type, left: Any, right: Any) -> Any:
        return _CMPOPS[op](left, right)

    def unary(self, op: type, operand: Any) -> Any:
        return _UNARY[op](operand)

    def prop(self, obj: Any, name: str) -> Any:
        return getattr(obj, name)

    def index(self, obj: Any, key: Any) -> Any:
        return obj[key]


def parse(source: str, *, known_functions: Callable[[str], bool] | None = None,
          variables: frozenset[str] | None = None) -> Expression:
    """Parse and check ``source``; raise :class:`ExpressionError` on anything not allowed.

    ``known_functions(name)`` says whether a called name exists; ``variables``
    are the names the expression may read (the case's inputs).
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}",
                              hint="Quote the expression in YAML if it starts with a special character.")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(source)} characters long, over the limit of {MAX_LENGTH}",
                              hint="Split the computation into a smaller expression.")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"invalid expression syntax at column {exc.offset}: {exc.msg}",
                              hint="Write one Python expression, e.g. `(3*(x+2)**2).mean()`.") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"expression cannot be parsed ({type(exc).__name__})",
                              hint="Nest less deeply.") from None
    checker = _Checker(known_functions, variables)
    checker.check(tree.body, depth=1)
    return Expression(source, tree, frozenset(checker.used_variables), frozenset(checker.used_functions))


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


class _Checker:
    def __init__(self, known_functions, variables) -> None:
        self.known = known_functions
        self.variables = variables
        self.used_variables: set[str] = set()
        self.used_functions: set[str] = set()
        self.nodes = 0

    def refuse(self, node: ast.AST, what: str, hint: str = FUNCTION_LIST_HINT) -> None:
        col = getattr(node, "col_offset", None)
        where = f" at column {col + 1}" if col is not None else ""
        raise ExpressionError(f"{what}{where} is not allowed in a case expression", hint=hint)

    def check(self, node: ast.AST, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression has over {MAX_NODES} syntax nodes",
                                  hint="Split the computation into a smaller expression.")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels",
                                  hint="Nest less deeply.")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            self.refuse(node, _describe(node))
        method(node, depth + 1)

    def _Constant(self, node, depth):
        if not isinstance(node.value, _CONST_TYPES):
            self.refuse(node, f"the constant {node.value!r}")
        if isinstance(node.value, str) and len(node.value) > 64:
            self.refuse(node, "a string longer than 64 characters")

    def _Name(self, node, depth):
        if node.id in RESERVED:
            self.refuse(node, f"the module name '{node.id}' on its own",
                        hint="Call a function from it, e.g. torch.exp(x).")
        if self.variables is not None and node.id not in self.variables:
            known = ", ".join(sorted(self.variables)) or "none"
            raise ExpressionError(f"unknown name '{node.id}' at column {node.col_offset + 1}",
                                  hint=f"The case's inputs are: {known}.")
        self.used_variables.add(node.id)

    def _BinOp(self, node, depth):
        if type(node.op) not in _BINOPS:
            self.refuse(node, f"the operator {type(node.op).__name__}")
        self.check(node.left, depth)
        self.check(node.right, depth)

    def _UnaryOp(self, node, depth):
        if type(node.op) not in _UNARY:
            self.refuse(node, f"the unary operator {type(node.op).__name__}")
        self.check(node.operand, depth)

    def _Compare(self, node, depth):
        if len(node.ops) != 1 or type(node.ops[0]) not in _CMPOPS:
            self.refuse(node, "a chained comparison or 'in'/'is'",
                        hint="Use one comparison, e.g. where(x > 0, x, 0).")
        self.check(node.left, depth)
        self.check(node.comparators[0], depth)

    def _Tuple(self, node, depth):
        for elt in node.elts:
            self.check(elt, depth)

    _List = _Tuple

    def _Attribute(self, node, depth):
        # Only reached outside call position: x.T and x.mT.
        if node.attr not in PROPERTIES:
            self.refuse(node, f"the attribute '.{node.attr}'",
                        hint="Only .T and .mT may be read; call functions as methods, e.g. x.sum(dim=0).")
        if dotted(node.value) in MODULE_PREFIXES | RESERVED:
            self.refuse(node, f"the attribute '.{node.attr}' of a module")
        self.check(node.value, depth)

    def _Call(self, node, depth):
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
        if self.known is not None and not self.known(name):
            raise UnknownFunctionError(
                f"unknown function '{name}' at column {func.col_offset + 1}", hint=FUNCTION_LIST_HINT)
        self.used_functions.add(name)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.refuse(arg, "argument unpacking with *")
            self.check(arg, depth)
        for kw in node.keywords:
            if kw.arg is None:
                self.refuse(kw.value, "keyword unpacking with **")
            self.check(kw.value, depth)

    def _Subscript(self, node, depth):
        self.check(node.value, depth)
        self._index(node.slice, depth, top=True)

    def _index(self, node, depth, top=False):
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
        elif isinstance(node, (ast.Name, ast.List)):
            self.check(node, depth)                   # an index tensor or a list of indices
        else:
            self.refuse(node, "this kind of subscript",
                        hint="Index with integers, slices, None, ..., or an integer/bool input.")

    def _int_literal(self, node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        if not (isinstance(node, ast.Constant) and type(node.value) is int):
            self.refuse(node, "a slice bound that is not an integer literal")


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "lambda", "ListComp": "a list comprehension", "GeneratorExp": "a generator",
        "DictComp": "a dict comprehension", "SetComp": "a set comprehension", "Dict": "a dict",
        "Set": "a set", "IfExp": "a conditional expression (use where(...))",
        "BoolOp": "'and'/'or' (use where(...))", "NamedExpr": "the walrus operator :=",
        "JoinedStr": "an f-string", "Await": "await", "Yield": "yield", "Starred": "unpacking",
    }
    return names.get(type(node).__name__, f"the syntax '{type(node).__name__}'")


class _Interpreter:
    """Walks a checked tree; every operation goes through the Reading."""

    def __init__(self, reading: Reading) -> None:
        self.r = reading

    def visit(self, node: ast.AST) -> Any:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Constant(self, node):
        return self.r.literal(node.value)

    def _Name(self, node):
        return self.r.variables[node.id]

    def _BinOp(self, node):
        return self.r.binop(type(node.op), self.visit(node.left), self.visit(node.right))

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
        name = func.id if isinstance(func, ast.Name) else func.attr
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords}
        return self.r.call(name, args, kwargs)

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
