"""The numeric-exact model: a case's forward evaluated at 60 digits, Jᵀv and J·u by Richardson.

The case's own expression runs through the mirror with *numbers* (SymPy Floats of
``richardson.DIGITS`` digits) in place of symbols; the decompositions in
mirror/decompositions.py compute with mpmath at that precision. Every differentiated input element
gets one Richardson-extrapolated central difference of the whole output (a column of J), so Jᵀv,
|J|ᵀ|v| and the error estimate come from the same numbers. A result is refused (``SymbolicError``)
when

* the output depends on a gauge (eigenvector/singular-vector/QR column signs): the forward is
  evaluated again with seeded sign flips and must not move;
* an error estimate is not below ``ESTIMATE_SHARE`` of the float64 allowance of its element;
* a decomposition meets a repeated eigenvalue or singular value (the mirror refuses the point).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp
from sympy.core.parameters import distribute

from ...cases.case import Case
from ...errors import CaseError, RefusedPoint, SymbolicError
from ..mirror import decompositions as dec
from ..mirror import lu as _lu
from ..mirror._arrays import sym_number
from ..mirror.factors import _cuts
from ..symbolic import ExactResult, SymbolicReading, as_object_array
from . import richardson

#: An error estimate must stay below this share of the float64 allowance (rtol·M + atol) of its element.
ESTIMATE_SHARE = 1e-6
_EPS64 = 2.0 ** -52
# float64's default allowance (docs/numerics.md: rtol = eps^(2/3) on M, atol = eps^(4/5)), recomputed here
_RTOL64, _ATOL64 = _EPS64 ** (2 / 3), _EPS64 ** (4 / 5)
_GAUGE_MATCH = mpmath.mpf(10) ** -(richardson.DIGITS // 2)


#: Closed-form mirrors whose SymPy expressions grow too fast past 2x2 (pinv of a 4x4 took 52 s, of a
#: 5x3 227 s): the same definitions evaluated on 60-digit numbers instead, when a matrix input is larger.
NUMERIC_PAST_2X2 = frozenset({"pinv", "lstsq"})


def uses_numeric_route(case: Case) -> bool:
    """Whether the case's expression calls a decomposition that only the numeric-exact route evaluates."""
    from ..mirror import resolve
    fn = case.sympy_fn
    names = getattr(fn, "functions", None)
    if names is None:
        return False                      # a Python callable: compiled.prepare catches NumericOnly instead
    large = any(len(np.shape(s.values())) >= 2 and max(np.shape(s.values())[-2:]) > 2
                for s in case.inputs if s.dtype is None)
    for name in names:
        try:
            entry = resolve(name)
        except CaseError:
            continue
        if entry.name in dec.NUMERIC_ONLY | _lu.NUMERIC_ONLY or (large and entry.name in NUMERIC_PAST_2X2):
            return True
    return False


class _NumericReading(SymbolicReading):
    """The mirror on numbers. pinv and lstsq of one matrix evaluate their mirror's definition (the
    normal equations, mirror/factors.py) in mpmath directly: SymPy's unevaluated sums of Floats
    grow with every product. They note their condition σ_max/σ_min, as the decompositions do."""

    def call(self, name, args, kwargs):
        from ..mirror import resolve
        entry = resolve(name)
        if entry.name == "pinv" and any(_cuts(kwargs.get(k)) for k in ("atol", "rtol")):
            return super().call(name, args, kwargs)       # the mirror refuses a cut-off, saying why
        if entry.name in NUMERIC_PAST_2X2 and args and all(isinstance(a, np.ndarray) and a.ndim in (1, 2) and a.size
                                                           for a in args[:2]) and args[0].ndim == 2:
            return _normal_equations(entry.name, args)
        if entry.name == "pinv" and args and isinstance(args[0], np.ndarray) and args[0].ndim > 2 and args[0].size:
            # a batch: each matrix on its own (through SymPy the 2x5x5 OpInfo sample ran past 60 s)
            batch = args[0]
            parts = [_normal_equations("pinv", (m,)) for m in batch.reshape(-1, *batch.shape[-2:])]
            return np.stack(parts).reshape(*batch.shape[:-2], *parts[0].shape)
        return super().call(name, args, kwargs)


def _normal_equations(name: str, args) -> np.ndarray:
    """pinv(A) = (AᵀA)⁻¹Aᵀ (m ≥ n) or Aᵀ(AAᵀ)⁻¹; lstsq(A, B) = (AᵀA)⁻¹AᵀB (m ≥ n), at the working precision.

    The condition noted is σ_max/σ_min: torch computes both through an SVD/QR (backward stable), not
    through the normal equations, whose κ² would describe another algorithm."""
    a = mpmath.matrix([[dec.to_mpf(e) for e in row] for row in args[0]])
    if dec.recording():          # at the point itself (not at its Richardson steps): rank and condition
        sv = mpmath.svd_r(a, compute_uv=False)
        if min(sv) < dec.GAP * max(sv):
            raise RefusedPoint(f"{name}: the matrix is (nearly) rank deficient (smallest singular value "
                                f"{mpmath.nstr(min(sv), 3)}): not differentiable there",
                                hint="Choose a matrix of full rank.")
        dec._note(name, max(sv) / min(sv), max(a.rows, a.cols), None)
    if name == "pinv":
        out = mpmath.inverse(a.T * a) * a.T if a.rows >= a.cols else a.T * mpmath.inverse(a * a.T)
        shape = (a.cols, a.rows)
    else:
        if a.rows < a.cols:
            raise RefusedPoint("lstsq: only tall or square A (m >= n, full column rank) is supported")
        b = np.asarray(args[1], dtype=object)
        rhs = mpmath.matrix([[dec.to_mpf(e) for e in np.atleast_1d(row)] for row in (b if b.ndim == 2 else b[:, None])])
        out = mpmath.inverse(a.T * a) * (a.T * rhs)
        shape = (a.cols, rhs.cols) if b.ndim == 2 else (a.cols,)
    flat = [sp.Float(out[i, j], mpmath.mp.dps) for i in range(out.rows) for j in range(out.cols)]
    return np.array(flat, dtype=object).reshape(shape)


@dataclass
class NumericModel:
    """Stands in for a compiled model (``compiled.prepare``) on the numeric-exact route."""

    case: Case
    key: None = None                                  # never cached: each run computes again
    kind: str = "numeric"
    _columns: dict = field(default_factory=dict, repr=False)
    _shape: tuple | None = None

    def __post_init__(self) -> None:
        self.shapes = {s.name: tuple(np.shape(s.values())) for s in self.case.inputs if s.dtype is None}
        self.structural = {s.name: s.values() for s in self.case.inputs if s.dtype is not None}
        self.wrt = tuple(s.name for s in self.case.inputs if s.differentiated)

    @property
    def output_shape(self) -> tuple:
        if self._shape is None:
            point = {s.name: np.asarray(s.values(), dtype=np.float64) for s in self.case.inputs if s.dtype is None}
            with mpmath.workdps(richardson.DIGITS):
                self._shape = self._evaluate(_mp_point(point))[1]
        return self._shape

    @property
    def n_entries(self) -> int:
        return int(np.prod(self.output_shape, dtype=int)) * sum(int(np.prod(self.shapes[n], dtype=int))
                                                                  for n in self.wrt)

    @property
    def symbols(self):
        raise SymbolicError("the numeric-exact route has no symbolic model (no second derivatives)",
                            hint="Second-order checks of decompositions are not supported yet.")

    def kink_text(self, point) -> str:
        return ""            # non-smooth points (repeated eigenvalues) are refused by the mirror instead

    # --- evaluation -----------------------------------------------------------------------------

    def _evaluate(self, values: dict, flip: tuple[str, int] | None = None,
                  record: bool = True) -> tuple[list, tuple, list]:
        """(flat output as mpf, output shape, the decompositions' notes) at ``values`` (flat mpf lists).

        ``record=False`` (the Richardson steps around a point already evaluated): no notes, so pinv/lstsq
        skip the SVD that only measures their condition (70 % of a 5x5 pinv's forward)."""
        variables = {}
        for spec in self.case.inputs:
            if spec.dtype is None:
                flat = [sp.Float(v, richardson.DIGITS) for v in values[spec.name]]
                variables[spec.name] = np.array(flat, dtype=object).reshape(self.shapes[spec.name])
            else:
                variables[spec.name] = self.structural[spec.name]
        fn = self.case.sympy_fn
        with dec.gauge(flip), (dec.notes() if record else contextlib.nullcontext([])) as seen, distribute(False):
            try:
                if callable(fn) and not hasattr(fn, "evaluate"):
                    result = fn(*[variables[s.name] for s in self.case.inputs])
                else:
                    result = fn.evaluate(_NumericReading(variables))
            except CaseError:
                raise
            except Exception as exc:
                raise SymbolicError(f"the numeric-exact forward failed: {type(exc).__name__}: {exc}",
                                    hint="Check the expression's shapes and arguments against the torch side.") from None
        out = as_object_array(result)
        flat = []
        for e in out.flat:
            if not sym_number(e).is_number:
                raise SymbolicError(f"the numeric-exact forward gave {e}, not a number",
                                    hint="Every input of a numeric-exact case must be a number at the point.")
            flat.append(dec.to_mpf(e))
        return flat, tuple(out.shape), seen

    def _check_gauge(self, values: dict, base: list, seen: list) -> None:
        """Every single column sign flip of every decomposition met must leave the output where it was."""
        kinds = sorted({n[3] for n in _decompositions(seen) if n[3]})
        flips = list(dict.fromkeys((n[1], col) for n in seen if n[0] == "gauge" for col in range(n[2])))
        for flip in flips:
            moved, _, _ = self._evaluate(values, flip)
            if any(abs(a - b) > _GAUGE_MATCH * (1 + abs(b)) for a, b in zip(moved, base)):
                which = "; ".join(f"for {k}: {dec.INVARIANTS[k]}" for k in kinds)
                raise RefusedPoint(f"the output depends on the gauge of {', '.join(kinds)} (eigenvector or "
                                    "singular-vector signs, eig's order and phases are arbitrary, torch and the "
                                    "reference may differ): its gradient is not a property of the function, so a "
                                    "gauge-dependent output is not supported",
                                    hint=f"Check a gauge-invariant function instead, {which}.")

    def _derivatives(self, point, directions) -> tuple[list, list, list]:
        """Per direction: (the output's derivative along it, its error estimate); plus the notes."""
        values = _mp_point(point)
        base, shape, seen = self._evaluate(values)
        self._check_gauge(values, base, seen)
        cols, errs = [], []
        for direction in directions:
            def f(t, d=direction):
                return self._evaluate({k: [x + t * dx for x, dx in zip(values[k], d.get(k, ()))] if k in d
                                       else values[k] for k in values}, record=False)[0]
            col, err = richardson.derivative(f)
            cols.append(col)
            errs.append(err)
        return base, shape, seen, cols, errs

    def exact(self, point, weights) -> ExactResult:
        with mpmath.workdps(richardson.DIGITS):
            units = [(name, j) for name in self.wrt for j in range(int(np.prod(self.shapes[name], dtype=int)))]
            dirs = [{name: _unit(int(np.prod(self.shapes[name], dtype=int)), j)} for name, j in units]
            base, shape, seen, cols, errs = self._derivatives(point, dirs)
            n_out = len(base)
            v = np.ones(shape) if weights is None else np.broadcast_to(weights, shape)
            v = [mpmath.mpf(float(w)) for w in np.asarray(v, dtype=np.float64).ravel()]
            factor = _condition_factor(seen)
            vjp = {n: np.zeros(self.shapes[n]) for n in self.wrt}
            mag = {n: np.zeros(self.shapes[n]) for n in self.wrt}
            worst = 0.0
            for (name, j), col, err in zip(units, cols, errs):
                value = mpmath.fsum(v[i] * col[i] for i in range(n_out))
                error = float(mpmath.fsum(abs(v[i]) * err[i] for i in range(n_out)))
                m = factor * float(mpmath.fsum(abs(v[i] * col[i]) for i in range(n_out)))
                _require(error, m, f"Jᵀv of '{name}' element {j}")
                vjp[name].flat[j], mag[name].flat[j] = float(value), m
                worst = max(worst, error)
            self._columns[_key(point)] = (cols, units, factor)
            output = np.array([float(y) for y in base]).reshape(shape)
            out_mag = factor * np.abs(output)
        ops = ", ".join(sorted({n[0] for n in _decompositions(seen)})) or "no decomposition"
        gauge = "; output gauge-invariant (checked)" if any(n[3] for n in _decompositions(seen)) else ""
        route = (f"numeric-exact (mpmath {richardson.DIGITS} digits, Richardson) of {ops}: largest error "
                 f"estimate {worst:.1e}{gauge}")
        return ExactResult(output, vjp, route, None, False, mag, out_mag, factor if _decompositions(seen) else None)

    def exact_jvp(self, point, u) -> np.ndarray:
        with mpmath.workdps(richardson.DIGITS):
            direction = {n: [mpmath.mpf(float(x)) for x in np.asarray(u[n], dtype=np.float64).ravel()]
                         for n in self.wrt if n in u}
            base, shape, seen, (col,), (err,) = self._derivatives(point, [direction])
            factor = _condition_factor(seen)
            for i, (c, e) in enumerate(zip(col, err)):
                _require(float(e), factor * float(abs(c)), f"J·u element {i}")
            return np.array([float(c) for c in col]).reshape(shape)

    def exact_jvp_bound(self, point, u) -> np.ndarray:
        """κ·(|J| |u|) per output element (the magnitude rule of exact(), for J·u)."""
        hit = self._columns.get(_key(point))
        if hit is None:
            raise SymbolicError("the numeric-exact J·u bound needs exact() at this point first")
        cols, units, factor = hit
        n_out = len(cols[0]) if cols else 0
        out = np.zeros(n_out)
        for (name, j), col in zip(units, cols):
            uj = abs(float(np.asarray(u[name], dtype=np.float64).ravel()[j])) if name in u else 0.0
            out += uj * np.array([float(abs(c)) for c in col])
        return factor * out.reshape(self.output_shape)


def _mp_point(point) -> dict:
    return {k: [mpmath.mpf(float(x)) for x in np.asarray(a, dtype=np.float64).ravel()] for k, a in point.items()}


def _unit(n: int, j: int) -> list:
    return [mpmath.mpf(1) if k == j else mpmath.mpf(0) for k in range(n)]


def _key(point) -> bytes:
    return b"".join(k.encode() + np.ascontiguousarray(np.asarray(point[k], dtype=np.float64)).tobytes()
                    for k in sorted(point))


def _decompositions(seen: list) -> list:
    """The (name, condition, dimension, gauge kind) notes, without the gauge keys."""
    return [n for n in seen if n[0] != "gauge"]


#: The widest relative allowance the route accepts: rtol(dtype)·κ ≤ RESOLUTION, so any error above 1e-3 of
#: (|J|ᵀ|v|)_j (plus atol) is caught (docs/numeric-exact.md, "κ is capped per dtype").
RESOLUTION = 1e-3


def kappa_max(rtol: float) -> float:
    """The largest condition number a dtype with this ``rtol`` accepts: RESOLUTION / rtol (float32 100,
    float64 2.5e7 with the default tolerances; float16/bfloat16 below 1, so never)."""
    return RESOLUTION / rtol


def refuse_ill_conditioned(condition: float | None, rtol: float, dtype: str) -> None:
    """Raise when κ is too large for this dtype's rtol: the allowance rtol·κ·(|J|ᵀ|v|) could hide a wrong gradient."""
    if condition is None or condition <= kappa_max(rtol):
        return
    raise RefusedPoint(f"the decompositions' condition number is {condition:.3g}, above {kappa_max(rtol):.3g} for "
                        f"{dtype} (rtol {rtol:g}), not supported there: the allowance it implies (rtol·κ per element, above "
                        f"{RESOLUTION:g} of the gradient's scale) would be too wide to tell a wrong gradient from "
                        "rounding",
                        hint="Run it in a dtype with a smaller rtol (float64 accepts κ up to 2.5e7), or choose a "
                             "better-conditioned matrix (well-separated eigenvalues or singular values).")


def _condition_factor(seen: list) -> float:
    """κ: the worst condition the decompositions noted (docs/numeric-exact.md); the dtype's cap is the runner's."""
    notes = _decompositions(seen)
    if not notes:
        return 1.0
    return max(max(c for (_, c, _, _) in notes), 1.0)


def _require(error: float, magnitude: float, what: str) -> None:
    allowed = _RTOL64 * magnitude + _ATOL64
    if not (error <= ESTIMATE_SHARE * allowed) or math.isnan(error):
        raise SymbolicError(f"the Richardson error estimate of {what} is {error:.2e}, not below {ESTIMATE_SHARE:g} "
                            f"of its float64 allowance {allowed:.2e}: no reference to trust",
                            hint="The point is too close to a non-smooth one (nearly repeated eigenvalues?); "
                                 "choose another point.")
