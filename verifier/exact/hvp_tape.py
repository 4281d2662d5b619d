"""Exact H·w on the tape: forward over reverse, with no SymPy per case.

For s(x) = Σ v⊙y (the scalar behind ``y.backward(v)``), H·w = ∇ₓ Σ v⊙(J·w).
:func:`tangent_tape` appends to a case's compiled tape the tangent of every
node along a direction w (forward mode, ``t(i) = Σ_c ∂i/∂c · t(c)``) *as
tape nodes* whose leaves are the input elements and the direction's. The
reverse sweep of that tape (:func:`verifier.exact.sweep.backward`, 40
digits), seeded with ``v`` at the outputs' tangents, is H·w; the rounding
bound ``M`` of every element is the reverse sweep of absolute values over the
same tape (:func:`verifier.exact.bounds.gradient_bounds`), as for the
gradient (docs/numerics.md).

The local partials ``∂i/∂c`` become nodes: a sum's are 1, a product's the
product of the other factors, ``b ** e`` the power rule, the functions with
a built-in sweep rule (exp, tanh, ...) the same formulas as
:func:`verifier.exact.sweep._rule` (checked at the point against SymPy's
derivative, once per function and case: :func:`check_rules`), and every
other function its derivative nodes (``tape.dargs``: SymPy's ``fdiff``, put
on the tape when it was compiled). The reverse sweep then goes through those
derivative nodes, so functions inside them need derivatives of their own:
SymPy differentiates each such function once per process (per function and
constant arguments), and the result is copied onto the tape by index
(:func:`_derivative_template`). SymPy stays the source of truth of every
operation's mathematics; what no longer happens is SymPy's symbolic
directional derivative of the whole per-element graph and its compilation
(the old route, kept in :mod:`verifier.torch_side.second_order` as the
second route the tests compare against, and for models without a tape).
"""

from __future__ import annotations

import math
import weakref
from fractions import Fraction
from typing import Mapping

import mpmath
import numpy as np
import sympy as sp

from ..errors import SymbolicError
from . import bounds, rule_check, sweep
from .evaluation import real_value
from .tape import _NAMED, ADD, CONST, FUNC, FUNCTIONS, MUL, PIECEWISE, POW, RULES, SYM, Tape, _Compiler, iter_nodes

# leaf names of the direction's elements on the tangent tape, and the keys of the rounding bounds
DIRECTION, BOUND = "\0w:", "M:"

#: An H·w within 10^(ZERO_DIGITS - digits)·M of 0 is 0: the 40-digit sweep's own rounding of terms that
#: cancel exactly (1e-30·M at 40 digits; every dtype's allowance is rtol·M with rtol ≥ 1e-16).
ZERO_DIGITS = 10

#: A product of more factors than this gets its "product of the others" from shared prefix and
#: suffix chains (O(k) nodes) instead of k products of k - 1 factors each (O(k²)).
CHAIN_FACTORS = 8

_TEMPLATES: dict = {}     # (function, constant arguments) -> (small tape, its root), per process


class _Tangents:
    """Builds the tangent tape: a compacted copy of the outputs' graph, then the tangent nodes."""

    def __init__(self, tape: Tape, n_out: int, wrt) -> None:
        keep = _reachable(tape, tape.roots[:n_out])
        new = {old: k for k, old in enumerate(keep)}
        self.ops = [tape.ops[i] for i in keep]
        self.args = [tuple(new[j] for j in tape.args[i]) for i in keep]
        self.extra = [tape.extra[i] for i in keep]
        self.dargs = {new[i]: tuple(new[d] if d >= 0 else -1 for d in ds)
                      for i, ds in tape.dargs.items() if i in new}
        self.leaves = list(tape.leaves)
        self.roots = [new[r] for r in tape.roots[:n_out]]
        self.wrt = set(wrt)
        self.consts: dict[str, int] = {}
        self.rules: list = []         # (node, [(child, partial node)]) of the built-in rules, for check_rules

    # -- emitting nodes ------------------------------------------------------------------------------
    def emit(self, op: int, args=(), extra: str = "") -> int:
        self.ops.append(op)
        self.args.append(tuple(args))
        self.extra.append(extra)
        return len(self.ops) - 1

    def const(self, text: str) -> int:
        hit = self.consts.get(text)
        if hit is None:
            hit = self.consts[text] = self.emit(CONST, (), text)
        return hit

    def num(self, q) -> int:
        q = Fraction(q)
        return self.const(f"{q.numerator}/{q.denominator}")

    def add(self, terms) -> int | None:
        terms = [t for t in terms if t is not None]
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else self.emit(ADD, terms)

    def mul(self, *factors) -> int | None:
        if any(f is None for f in factors):
            return None
        return factors[0] if len(factors) == 1 else self.emit(MUL, factors)

    def pow(self, base: int, q) -> int:
        return self.emit(POW, (base, self.num(q)))

    def func(self, name: str, *args: int) -> int:
        return self.emit(FUNC, args, name)

    # -- the tangent of each node ------------------------------------------------------------------
    def build(self) -> Tape:
        n = len(self.ops)
        dot: list = [None] * n
        for i in _reachable(self, self.roots, through_derivatives=False):   # not the derivative nodes' own
            op = self.ops[i]
            if op == SYM:
                name, k = self.leaves[int(self.extra[i])]
                if name in self.wrt:
                    self.leaves.append((DIRECTION + name, k))
                    dot[i] = self.emit(SYM, (), str(len(self.leaves) - 1))
            elif op in (ADD, MUL, POW, FUNC, PIECEWISE) and any(dot[j] is not None for j in self.args[i]):
                dot[i] = self._tangent(i, op, dot)
        roots = [dot[r] if dot[r] is not None else self.num(0) for r in self.roots]
        self._derivatives_below(roots, n)
        return Tape(self.ops, self.args, self.extra, self.dargs, self.leaves, roots)

    def _tangent(self, i: int, op: int, dot: list) -> int | None:
        a = self.args[i]
        if op == ADD:
            return self.add(dot[j] for j in a)
        if op == MUL:
            return self._product_rule(a, dot)
        if op == POW:
            return self._power_rule(i, a, dot)
        if op == PIECEWISE:
            zero = self.num(0)              # branches by their tangents, conditions as they are
            return self.emit(PIECEWISE, [j if k % 2 else zero if dot[j] is None else dot[j]
                                         for k, j in enumerate(a)])
        return self.add(self.mul(p, dot[j]) for j, p in self.partials(i) if dot[j] is not None)

    def _product_rule(self, factors: tuple, dot: list) -> int | None:
        """Σ_k (Π_{j≠k} f_j) · t(f_k)."""
        active = [k for k, f in enumerate(factors) if dot[f] is not None]
        if len(factors) <= CHAIN_FACTORS:
            return self.add(self.mul(*(factors[:k] + factors[k + 1:]), dot[factors[k]]) for k in active)
        prefix, suffix = [None], [None]           # products of the first k / last k factors (None: empty)
        for f in factors[:-1]:
            prefix.append(f if prefix[-1] is None else self.emit(MUL, (prefix[-1], f)))
        for f in reversed(factors[1:]):
            suffix.append(f if suffix[-1] is None else self.emit(MUL, (f, suffix[-1])))
        suffix.reverse()                          # suffix[k] = product of factors[k+1:]
        return self.add(self.mul(*[p for p in (prefix[k], suffix[k]) if p is not None], dot[factors[k]])
                        for k in active)

    def _power_rule(self, i: int, a: tuple, dot: list) -> int | None:
        b, e = a
        db, de = dot[b], dot[e]
        if de is None:                            # e·b^(e-1)·t(b)
            if self.ops[e] == CONST and "/" in self.extra[e]:
                q = Fraction(*(int(s) for s in self.extra[e].split("/")))
                if q == 0:
                    return None
                return db if q == 1 else self.mul(e, self.pow(b, q - 1), db)
            return self.mul(e, self.emit(POW, (b, self.add([e, self.num(-1)]))), db)
        # b^e · (t(e)·log b + e·t(b)/b)
        inner = self.add([self.mul(de, self.func("log", b)),
                          None if db is None else self.mul(e, db, self.pow(b, -1))])
        return self.mul(i, inner)

    def partials(self, i: int) -> list:
        """``[(child, node of ∂i/∂child)]`` of function node ``i``."""
        a = self.args[i]
        if i not in self.dargs and self.extra[i] in RULES:
            pairs = self._rule(i, self.extra[i], a)
            self.rules.append((i, pairs))
            return pairs
        if i not in self.dargs:
            self._add_derivatives(i)
        return [(j, d) for j, d in zip(a, self.dargs[i]) if d >= 0]

    def _rule(self, i: int, name: str, a: tuple) -> list:
        """The sweep's built-in derivative rules (sweep._rule) as nodes."""
        x = a[0]
        if name == "atan2":                       # atan2(y, x): the first argument is y
            yy, xx = a
            inv = self.pow(self.add([self.pow(xx, 2), self.pow(yy, 2)]), -1)
            return [(yy, self.mul(xx, inv)), (xx, self.mul(self.num(-1), yy, inv))]
        if name == "exp":
            d = i
        elif name == "log":
            d = self.pow(x, -1)
        elif name in ("sin", "cos", "sinh", "cosh"):
            other = {"sin": "cos", "cos": "sin", "sinh": "cosh", "cosh": "sinh"}[name]
            d = self.func(other, x)
            d = self.mul(self.num(-1), d) if name == "cos" else d
        elif name in ("tan", "tanh"):             # 1 ± y²
            sq = self.pow(i, 2)
            d = self.add([self.num(1), sq if name == "tan" else self.mul(self.num(-1), sq)])
        elif name in ("asin", "acos", "atanh"):   # ±(1 - x²)^(-1/2), (1 - x²)^-1
            one_minus = self.add([self.num(1), self.mul(self.num(-1), self.pow(x, 2))])
            d = self.pow(one_minus, -1 if name == "atanh" else Fraction(-1, 2))
            d = self.mul(self.num(-1), d) if name == "acos" else d
        elif name in ("atan", "asinh"):           # (1 + x²)^-1, (1 + x²)^(-1/2)
            d = self.pow(self.add([self.num(1), self.pow(x, 2)]), -1 if name == "atan" else Fraction(-1, 2))
        elif name == "acosh":                     # (x - 1)^(-1/2)·(x + 1)^(-1/2)
            d = self.mul(self.pow(self.add([x, self.num(-1)]), Fraction(-1, 2)),
                         self.pow(self.add([x, self.num(1)]), Fraction(-1, 2)))
        elif name in ("erf", "erfc"):             # ±2/√π · exp(-x²)
            gauss = self.func("exp", self.mul(self.num(-1), self.pow(x, 2)))
            d = self.mul(self.num(2 if name == "erf" else -2), self.pow(self.const("pi"), Fraction(-1, 2)), gauss)
        else:  # pragma: no cover - RULES is the list above
            raise SymbolicError(f"no derivative rule for {name}")
        return [(x, d)]

    # -- derivative nodes for functions the reverse sweep meets without them -------------------------
    def _derivatives_below(self, roots: list, start: int) -> None:
        """Give every function under ``roots`` without a rule or derivative nodes SymPy's derivative nodes."""
        def step(i):
            if self.ops[i] == FUNC and i not in self.dargs and self.extra[i] not in RULES:
                self._add_derivatives(i)
            return self.args[i]
        sweep._walk(roots, step)

    def _add_derivatives(self, i: int) -> None:
        a = self.args[i]
        texts = tuple(self.extra[j] if self.ops[j] == CONST else None for j in a)
        small, root = _derivative_template(self.extra[i], texts)
        where: dict[int, int] = {root: i}
        for k, op in enumerate(small.ops):
            if k == root:
                continue
            if op == SYM:
                where[k] = a[small.leaves[int(small.extra[k])][1]]
            elif op == CONST:
                where[k] = self.const(small.extra[k])
            else:
                where[k] = self.emit(op, tuple(where[j] for j in small.args[k]), small.extra[k])
        self.dargs[i] = tuple(where[d] if d >= 0 else -1 for d in small.dargs[root])


def _derivative_template(name: str, texts: tuple) -> tuple[Tape, int]:
    """SymPy's derivative nodes of function ``name`` over one symbol per non-constant argument (cached)."""
    key = (name, texts)
    hit = _TEMPLATES.get(key)
    if hit is None:
        syms = [sp.Dummy(f"a{k}", real=True) for k in range(len(texts))]
        args = [syms[k] if t is None else _constant(t) for k, t in enumerate(texts)]
        try:
            node = FUNCTIONS[name](*args, evaluate=False)
        except Exception as exc:      # SymPy refuses the arguments: no derivative to take
            raise SymbolicError(f"no second derivative for {name}: {type(exc).__name__}: {exc}") from None
        c = _Compiler({s: ("", k) for k, s in enumerate(syms) if texts[k] is None})
        root = c.add(node)
        c.finish()
        if root not in c.dargs:
            raise SymbolicError(f"no second derivative for {name}")
        hit = _TEMPLATES[key] = (Tape(c.ops, c.args, c.extra, c.dargs, c.leaf_list, [root]), root)
    return hit


def _constant(text: str) -> sp.Basic:
    if text in _NAMED:
        return _NAMED[text]
    if "/" not in text:
        raise SymbolicError(f"cannot differentiate a function of the constant {text}")
    p, q = (int(s) for s in text.split("/"))
    return sp.Rational(p, q)


def _reachable(tape, roots, through_derivatives: bool = True) -> list[int]:
    """Nodes under ``roots`` (arguments, and derivative nodes unless told not to), ascending."""
    if through_derivatives:
        return iter_nodes(tape, roots)
    return sorted(sweep._walk(roots, lambda i: tape.args[i]))


def tangent_tape(tape: Tape, n_out: int, wrt) -> tuple[Tape, list]:
    """The tape of the outputs' tangents along the direction (leaves ``DIRECTION + name``), and its rule nodes."""
    t = _Tangents(tape, n_out, wrt)
    out = t.build()
    return out, t.rules


_CACHE: dict[int, tuple] = {}     # id(tape) -> (weak reference to it, tangent tape, rule nodes)


def _cached(tape: Tape, n_out: int, wrt) -> tuple[Tape, list]:
    hit = _CACHE.get(id(tape))
    if hit is not None and hit[0]() is tape and hit[1] == (n_out, tuple(wrt)):
        return hit[2], hit[3]
    built = tangent_tape(tape, n_out, wrt)
    ref = weakref.ref(tape, lambda _, key=id(tape): _CACHE.pop(key, None))
    _CACHE[id(tape)] = (ref, (n_out, tuple(wrt)), *built)
    return built


def check_rules(tape: Tape, vals: list, rules: list, digits: int) -> None:
    """Each built-in rule's partial node against SymPy's derivative, at the first node of each function."""
    seen: set = set()
    tol = mpmath.mpf(10) ** (-(digits // 2))
    for i, pairs in rules:
        name = tape.extra[i]
        args = [vals[j] for j in tape.args[i]]
        if name in seen or not all(isinstance(v, mpmath.mpf) for v in args):
            continue
        try:
            want = dict(zip(tape.args[i], rule_check._derivative(name)(*args)))
        except (ValueError, ZeroDivisionError, ArithmeticError):
            continue
        seen.add(name)
        for j, p in pairs:
            got = vals[p]
            if isinstance(got, sweep.Poison) or abs(got - want[j]) > (1 + abs(want[j])) * tol:
                raise SymbolicError(f"the tangent tape's rule for {name} gives {got} where SymPy's derivative "
                                    f"gives {want[j]}", hint="This is a bug in the symbolic engine; please report the case.")


def exact_hvp(tape: Tape, shapes: Mapping[str, tuple], wrt, point: Mapping[str, np.ndarray],
              v: list[float], direction: Mapping[str, np.ndarray], digits: int) -> dict[str, np.ndarray]:
    """H·w of Σ v⊙y per input in ``wrt``, and ``BOUND + name`` its rounding bound M.

    ``v``: the weights of the outputs, ``tape``'s first ``len(v)`` roots (row-major).
    """
    ttape, rules = _cached(tape, len(v), wrt)
    out = {name: np.zeros(shapes[name]) for name in wrt}
    out.update({BOUND + name: np.zeros(shapes[name]) for name in wrt})
    at = {**point, **{DIRECTION + name: np.asarray(direction[name], dtype=np.float64) for name in wrt}}
    with mpmath.workdps(digits):
        vals = sweep.forward(ttape, sweep.leaf_values(ttape, at))
        seeds: dict = {}
        for r, w in zip(ttape.roots, v):
            if w != 0 and ttape.ops[r] != CONST:
                sweep.value(vals, r, "directional derivative")
                seeds[r] = seeds.get(r, 0) + mpmath.mpf(w)
        if not seeds:
            return out                             # H·w is 0 structurally
        check_rules(ttape, vals, rules, digits)
        active = sweep.active_nodes(ttape, wrt)
        grads = sweep.backward(ttape, vals, seeds, active)
        _, leaf_bounds = bounds.gradient_bounds(ttape, vals, seeds, active)
        floor = mpmath.mpf(10) ** (ZERO_DIGITS - digits)
        for (name, k), g, b in zip(ttape.leaves, grads, leaf_bounds):
            if name in wrt:
                m = float("inf") if b is None else float(abs(b))
                # terms that cancel exactly leave the sweep's own rounding (1e-36 in F.normalize over a size-1
                # dim): below floor·M it is 0, as SymPy's route, which cancels them symbolically, says
                out[name].flat[k] = 0.0 if math.isfinite(m) and abs(g) <= floor * m else real_value(g, "H·w")
                out[BOUND + name].flat[k] = m
    return out
