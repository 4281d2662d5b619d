"""A compiled expression graph: SymPy's shared DAG flattened into a list of numbered nodes.

Walking SymPy objects costs a hash lookup and attribute access per node, and
building them costs far more; once a case's output (and, for small cases,
its symbolic Jacobian) is known, the graph is flattened into a *tape*: node
``i`` has an operation, the indices of its argument nodes (all smaller than
``i``) and, for numbers, functions and symbols, one extra datum. The tape is

* evaluated forward and swept backward by :mod:`verifier.exact.sweep` (mpmath,
  40 digits) and :mod:`verifier.exact.vectorised` (numpy arrays, elementwise
  templates);
* plain data (strings and integers), so :mod:`verifier.exact.cache` stores it on
  disk and a warm run never touches SymPy.

Exact numbers stay exact: a Rational is stored as ``"p/q"`` and turned into
an mpmath or numpy value only at evaluation, in that evaluator's precision.
Functions without a hand-written derivative rule in the evaluators (Max,
Abs, Heaviside, ...) carry their SymPy derivatives ``fdiff(k)`` as extra
nodes, so a kink's derivative is exactly what SymPy (and so the mirror's
definition) says it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import sympy as sp

from ..errors import SymbolicError
from .mirror import special2

# Operations (small ints keep the tape compact on disk and fast to dispatch).
SYM, CONST, ADD, MUL, POW, FUNC, PIECEWISE, REL, AND, OR, NOT = range(11)

# Functions the evaluators differentiate by a built-in rule; all others carry fdiff nodes.
RULES = frozenset({"exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos",
                   "atan", "asinh", "acosh", "atanh", "erf", "erfc", "atan2"})

FUNCTIONS = {cls.__name__: cls for cls in (
    sp.exp, sp.log, sp.sin, sp.cos, sp.tan, sp.asin, sp.acos, sp.atan, sp.sinh, sp.cosh, sp.tanh,
    sp.asinh, sp.acosh, sp.atanh, sp.erf, sp.erfc, sp.Abs, sp.sec, sp.csc, sp.cot, sp.atan2,
    sp.gamma, sp.loggamma, sp.polygamma, sp.floor, sp.ceiling, sp.sinc, sp.sign, sp.Heaviside,
    sp.DiracDelta, sp.Max, sp.Min, sp.erfinv, sp.besseli, sp.zeta, *special2.NUMERIC)}

RELATIONS = {sp.StrictGreaterThan: ">", sp.GreaterThan: ">=", sp.StrictLessThan: "<",
             sp.LessThan: "<=", sp.Equality: "==", sp.Unequality: "!="}

_NAMED = {"pi": sp.pi, "E": sp.E, "oo": sp.oo, "-oo": sp.S.NegativeInfinity,
          "EulerGamma": sp.EulerGamma, "Catalan": sp.Catalan, "GoldenRatio": sp.GoldenRatio}


@dataclass
class Tape:
    """A flattened expression graph.

    ``ops[i]``/``args[i]``/``extra[i]`` describe node ``i``: for ``CONST`` the
    number (``"p/q"``, ``"pi"``, ``"true"``...), for ``FUNC`` the SymPy class
    name, for ``REL`` the operator, for ``SYM`` the leaf's position in
    ``leaves``. ``dargs[i]`` holds, for a ``FUNC`` node without a built-in
    rule, one derivative node per argument (-1 for number arguments).
    ``leaves`` are ``(input name, flat index)``; ``roots`` are the node
    indices of the requested expressions, in order.
    """

    ops: list[int]
    args: list[tuple[int, ...]]
    extra: list[str]
    dargs: dict[int, tuple[int, ...]]
    leaves: list[tuple[str, int]]
    roots: list[int]

    def __len__(self) -> int:
        return len(self.ops)

    def to_data(self) -> dict:
        """Plain lists and dicts (JSON-safe) for the disk cache."""
        return {"ops": self.ops, "args": [list(a) for a in self.args], "extra": self.extra,
                "dargs": {str(k): list(v) for k, v in self.dargs.items()},
                "leaves": [list(leaf) for leaf in self.leaves], "roots": self.roots}

    @classmethod
    def from_data(cls, data: dict) -> "Tape":
        """The tape ``to_data`` wrote; ValueError when the data is not a well-formed tape."""
        try:
            tape = cls([int(op) for op in data["ops"]], [tuple(int(j) for j in a) for a in data["args"]],
                       [str(e) for e in data["extra"]],
                       {int(k): tuple(int(j) for j in v) for k, v in data["dargs"].items()},
                       [(str(n), int(i)) for n, i in data["leaves"]], [int(r) for r in data["roots"]])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed tape: {exc}") from None
        n = len(tape.ops)
        ok = (len(tape.args) == n and len(tape.extra) == n and all(SYM <= op <= NOT for op in tape.ops)
              and all(all(0 <= j < i for j in a) for i, a in enumerate(tape.args))
              and all(0 <= r < n for r in tape.roots)
              and all(0 <= k < n and all(-1 <= j < n for j in v) for k, v in tape.dargs.items())
              and all(int(tape.extra[i]) < len(tape.leaves) for i, op in enumerate(tape.ops) if op == SYM))
        if not ok:
            raise ValueError("malformed tape: indices out of range")
        return tape


def symbol_leaves(symbols: dict) -> dict:
    """Map each element symbol of ``{input name: object array of symbols}`` to (name, flat index)."""
    out = {}
    for name, arr in symbols.items():
        for k, s in enumerate(arr.ravel().tolist()):
            out[s] = (name, k)
    return out


def compile_tape(roots: Sequence, leaves: dict, extra_roots: Sequence = ()) -> Tape:
    """Flatten ``roots`` then ``extra_roots`` (SymPy objects or numbers) over the symbols in ``leaves``.

    Only the graph of ``roots`` is swept backwards, so only its functions get
    derivative nodes; ``extra_roots`` (a symbolic Jacobian, a template's
    symbolic derivatives) are evaluated forward only. Expanding derivatives
    of derivatives would never end (Heaviside -> DiracDelta -> DiracDelta(x, 1) ...).
    """
    c = _Compiler(leaves)
    out = [c.add(_basic(r)) for r in roots]
    c.finish()
    c.differentiate = False
    out += [c.add(_basic(r)) for r in extra_roots]
    return Tape(c.ops, c.args, c.extra, c.dargs, c.leaf_list, out)


def _basic(value) -> sp.Basic:
    # Only numbers are converted: a string here would be sympified into code.
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
        return sp.Rational(value) if isinstance(value, (float, np.floating)) else sp.Integer(int(value))
    raise SymbolicError(f"the symbolic result holds a {type(value).__name__}, not a number or expression")


class _Compiler:
    def __init__(self, leaves: dict) -> None:
        self.leaves = leaves
        self.index: dict = {}
        self.ops: list[int] = []
        self.args: list[tuple[int, ...]] = []
        self.extra: list[str] = []
        self.dargs: dict[int, tuple[int, ...]] = {}
        self.leaf_list: list[tuple[str, int]] = []
        self.pending: list[tuple[int, sp.Basic]] = []   # FUNC nodes that need fdiff nodes
        self.differentiate = True

    def finish(self) -> None:
        """Add the fdiff nodes of the swept graph's functions (derivative nodes get none)."""
        self.differentiate = False
        pending, self.pending = self.pending, []
        for i, node in pending:
            if node.func in (sp.Max, sp.Min) and len(node.args) > 2:
                self.dargs[i] = tuple(self.add(d) for d in _extremum_partials(node))
                continue
            ds = []
            for k, arg in enumerate(node.args, start=1):
                if arg.is_Number or (node.func in (sp.Heaviside,) and k == 2):
                    ds.append(-1)
                    continue
                try:
                    ds.append(self.add(_partial(node, k)))
                except SymbolicError:
                    raise
                except Exception as exc:  # SymPy raises ArgumentIndexError and friends
                    raise SymbolicError(f"no derivative rule for {node.func.__name__}: {exc}") from None
            self.dargs[i] = tuple(ds)

    def add(self, root: sp.Basic) -> int:
        """Index of ``root``, appending it and its unseen descendants children-first."""
        index = self.index
        if root in index:
            return index[root]
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in index:
                continue
            children = self._children(node)
            if not expanded:
                stack.append((node, True))
                stack.extend((ch, False) for ch in children if ch not in index)
                continue
            index[node] = self._emit(node, children)
        return index[root]

    @staticmethod
    def _children(node) -> tuple:
        if isinstance(node, sp.Piecewise):
            return tuple(part for pair in node.args for part in pair)
        if node.is_Atom:
            return ()
        return node.args

    def _append(self, op: int, args: tuple[int, ...] = (), extra: str = "") -> int:
        self.ops.append(op)
        self.args.append(args)
        self.extra.append(extra)
        return len(self.ops) - 1

    def _emit(self, node, children) -> int:
        args = tuple(self.index[ch] for ch in children)
        if node.is_Symbol:
            if node not in self.leaves:
                raise SymbolicError(f"the symbol {node} is not an input element")
            self.leaf_list.append(self.leaves[node])
            return self._append(SYM, (), str(len(self.leaf_list) - 1))
        if node.is_Atom:
            return self._append(CONST, (), _number(node))
        if node.is_Add:
            return self._append(ADD, args)
        if node.is_Mul:
            return self._append(MUL, args)
        if node.is_Pow:
            return self._append(POW, args)
        if isinstance(node, sp.Piecewise):
            return self._append(PIECEWISE, args)
        if type(node) in RELATIONS:
            return self._append(REL, args, RELATIONS[type(node)])
        if isinstance(node, sp.And):
            return self._append(AND, args)
        if isinstance(node, sp.Or):
            return self._append(OR, args)
        if isinstance(node, sp.Not):
            return self._append(NOT, args)
        name = node.func.__name__
        if FUNCTIONS.get(name) is not node.func:
            raise SymbolicError(f"cannot evaluate '{name}' numerically",
                                hint="Add it to verifier/exact/tape.py's FUNCTIONS and the evaluators' tables.")
        i = self._append(FUNC, args, name)
        if name not in RULES and self.differentiate:
            self.pending.append((i, node))
        return i


def _extremum_partials(node) -> list:
    """∂Max(x_1..x_n)/∂x_k for every k in O(n) nodes: [x_k = m] / #{j: x_j = m}, m the node itself.

    SymPy's ``fdiff`` builds ``Heaviside(x_k - Max(others))`` for each k,
    evaluating a Max of n - 1 arguments (pairwise comparisons) n times:
    minutes for 25 elements. The indicators share one denominator, and the
    rule is the one torch uses for max/min over all elements: away from ties
    1 for the extreme element and 0 otherwise, at a k-fold tie 1/k each.
    """
    hits = [sp.Piecewise((sp.S.One, sp.Eq(a, node, evaluate=False)), (sp.S.Zero, True), evaluate=False)
            for a in node.args]
    share = sp.Pow(sp.Add(*hits, evaluate=False), -1, evaluate=False)
    return [sp.Mul(h, share, evaluate=False) for h in hits]


def _partial(node, k: int):
    """∂node/∂(its k-th argument) as an expression.

    ``fdiff`` is that, but some functions (sign) leave it unevaluated as
    ``Derivative``/``Subs``; differentiating ``f(..., d, ...)`` in a fresh
    symbol ``d`` and putting the argument back gives their own derivative
    rule (sign' = 2·DiracDelta, as ``sympy.diff`` says). floor and ceiling have no
    fdiff: they are constant between their jumps, derivative 0 (torch's gradient of
    floor/ceil/round/trunc is 0 everywhere; a jump is a kink).
    """
    if isinstance(node, (sp.floor, sp.ceiling)):
        return sp.S.Zero
    d = node.fdiff(k)
    if not d.has(sp.Derivative, sp.Subs):
        return d
    dummy = sp.Dummy(real=True)
    args = list(node.args)
    arg, args[k - 1] = args[k - 1], dummy
    d = sp.diff(node.func(*args), dummy).xreplace({dummy: arg})
    if d.has(sp.Derivative, sp.Subs):
        raise SymbolicError(f"no derivative rule for {node.func.__name__}")
    return d


def _number(node) -> str:
    """An exact, parseable spelling of a SymPy number or truth value."""
    if node is sp.true or node is sp.false:
        return "true" if node is sp.true else "false"
    if node.is_Rational:
        return f"{node.p}/{node.q}"
    if node.is_Float:
        r = sp.Rational(node)                      # the Float's exact binary value
        return f"{r.p}/{r.q}"
    for name, value in _NAMED.items():
        if node is value:
            return name
    if node is sp.zoo or node is sp.nan:
        # undefined values (1/0 in a branch the point may not take): poison at evaluation, not here
        return "zoo" if node is sp.zoo else "nan"
    raise SymbolicError(f"cannot evaluate the number {node!r}")


def iter_nodes(tape: Tape, roots: Iterable[int]) -> list[int]:
    """Indices of the nodes the given roots depend on, ascending (a forward order)."""
    seen = set()
    stack = list(roots)
    while stack:
        i = stack.pop()
        if i in seen or i < 0:
            continue
        seen.add(i)
        stack.extend(tape.args[i])
        stack.extend(tape.dargs.get(i, ()))
    return sorted(seen)


def adjoint_nodes(tape: Tape, adj: list, top: int, out: list):
    """The reverse sweep's walk, shared by the mpmath and numpy sweeps: nodes from ``top`` down.

    Yields ``(i, op, args, adjoint)`` for each interior node that has an
    adjoint (``adj[i]`` not None); a leaf's adjoint is stored in
    ``out[leaf]``; constants and relations pass nothing on. The caller adds
    each child's share into ``adj`` as it goes (with :func:`accumulate`).
    """
    ops, args, extra = tape.ops, tape.args, tape.extra
    for i in range(top, -1, -1):
        a = adj[i]
        if a is None:
            continue
        op = ops[i]
        if op == SYM:
            out[int(extra[i])] = a
        elif op != CONST and op < REL:
            yield i, op, args[i], a


def accumulate(adj: list, child: int, adjoint, partial) -> None:
    """``adj[child] += adjoint·partial`` (``partial`` None means 1), starting from None."""
    inc = adjoint if partial is None else adjoint * partial
    adj[child] = inc if adj[child] is None else adj[child] + inc
