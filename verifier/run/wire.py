"""A case result as plain data for the trip between machines: the digest's columns, never a pickled object.

A Dask worker (:mod:`verifier.run.dask_backend`) sends each result of a case
back to the client as :func:`to_wire`'s dict: text, numbers, lists and NumPy
arrays of numbers only (a categorical column travels as its codes and its
categories). Nothing in it can run code when the client reads it, and it is
small: the worker digests the result first (:mod:`verifier.run.digest`: the
summary numbers and heat grids over every element, the flagged and the
``keep`` worst detail rows), so a 10⁶-element case sends kilobytes.
:func:`from_wire` rebuilds the :class:`~verifier.run.runner.CaseResult` the
reports are written from, around the client's own ``Case`` object: a report
from results that came back this way is the one a local run writes (the
sides' small vectors for report.html's derivation included).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .checks import Check
from .digest import _FDSummary
from .heatgrid import HeatGrid
from .runner import CaseResult

#: The version of the dict below; a client refuses a result of another version (a worker of another release).
WIRE_VERSION = 2


def to_wire(result: CaseResult) -> dict:
    """``result`` (already digested) as plain data; see the module docstring."""
    fd = result.fd
    out = {
        "wire": WIRE_VERSION, "dtype": result.dtype, "status": result.status, "message": str(result.message or ""),
        "grad_fn": result.grad_fn, "route": result.route, "seconds": float(result.seconds),
        "columns": None if result.columns is None else {k: _plain(v) for k, v in result.columns.items()},
        "checks": [dataclasses.asdict(c) for c in result.checks],
        "stats": None if result.stats is None else {k: _number(v) for k, v in result.stats.items()},
        "heat": None if result.heat is None else [{**dataclasses.asdict(h), "shape": [int(n) for n in h.shape]}
                                                  for h in result.heat],
        "full_table": result.full_table,
        "fd": None if fd is None else {"method": str(getattr(fd, "method", "")),
                                       "notes": [str(n) for n in (getattr(fd, "notes", None) or [])]},
        "sides": _sides(result),
        # where torch's side ran and what it allowed (docs/devices.md); the exact J of a small failing case
        "device": str(result.device), "allowance": str(result.allowance or ""),
        "device_info": None if result.device_info is None else {str(k): str(v) for k, v in result.device_info.items()},
        "cross_device_max_abs_err": float(result.cross_device_max_abs_err),
        "jacobian": None if result.jacobian is None else {str(k): np.asarray(v) for k, v in result.jacobian.items()},
        "refused": bool(result.refused),
    }
    if result.columns is None and result._frame is not None:       # accumulation replaced the columns by a frame
        out["columns"] = {c: _plain(result._frame[c].array if isinstance(result._frame[c].dtype, pd.CategoricalDtype)
                                    else result._frame[c].to_numpy()) for c in result._frame.columns}
    return out


def from_wire(data: dict, case) -> CaseResult:
    """The :class:`CaseResult` ``data`` describes, for the client's ``case``."""
    if not isinstance(data, dict) or data.get("wire") != WIRE_VERSION:
        raise ValueError(f"a result in another format (wire version {data.get('wire') if isinstance(data, dict) else '?'}"
                         f", this client reads {WIRE_VERSION}): the workers run another verifier release")
    result = CaseResult(case, data["dtype"], data["status"], data["message"], grad_fn=data["grad_fn"],
                        route=data["route"], seconds=data["seconds"],
                        checks=[Check(**c) for c in data["checks"]], full_table=data["full_table"],
                        device=data["device"], allowance=data["allowance"], device_info=data["device_info"],
                        cross_device_max_abs_err=data["cross_device_max_abs_err"], jacobian=data["jacobian"],
                        refused=bool(data.get("refused", False)))
    if data["columns"] is not None:
        result.columns = {k: _unplain(v) for k, v in data["columns"].items()}
    result.stats = data["stats"]
    if data["heat"] is not None:
        result.heat = [HeatGrid(**{**h, "shape": tuple(h["shape"])}) for h in data["heat"]]
    if data["fd"] is not None:
        result.fd = _FDSummary(data["fd"]["method"], list(data["fd"]["notes"]))
    sides = data["sides"]
    if sides is not None:     # what report.html's derivation reads (html_report._derivation)
        result.exact = SimpleNamespace(output=sides["output"], vjp=sides["vjp"], route_gap=sides["route_gap"])
        result.autograd = SimpleNamespace(weights=sides["weights"])
    return result


def _sides(result: CaseResult) -> dict | None:
    """The exact output, Jᵀv and the weights when the result still holds them (small cases: digest.apply)."""
    ex, ag = result.exact, result.autograd
    if ex is None or ag is None or getattr(ex, "output", None) is None:
        return None
    weights = getattr(ag, "weights", None)
    return {"output": _numbers(ex.output),
            "vjp": {str(k): _numbers(v) for k, v in (ex.vjp or {}).items()},
            "route_gap": None if getattr(ex, "route_gap", None) is None else float(ex.route_gap),
            "weights": None if weights is None else _numbers(weights)}


def _numbers(values) -> np.ndarray:
    """Real values as float64, complex ones (complex cases, docs/complex.md) as complex128: never a dropped part."""
    array = np.asarray(values)
    return array.astype(np.complex128 if np.iscomplexobj(array) else np.float64)


def _plain(value):
    """A detail column as a NumPy array of numbers or bools, a list of text, or one plain value."""
    if isinstance(value, pd.Categorical):
        return {"codes": np.asarray(value.codes), "categories": [str(c) for c in value.categories],
                "ordered": bool(value.ordered)}
    if isinstance(value, (pd.Series, pd.api.extensions.ExtensionArray)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            return value
        return [v if isinstance(v, str) else _number(v) if isinstance(v, (float, np.floating)) else str(v)
                for v in value.tolist()]
    if isinstance(value, list):
        return [v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _unplain(value):
    if isinstance(value, dict):
        return pd.Categorical.from_codes(value["codes"], categories=value["categories"], ordered=value["ordered"])
    return value


def _number(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)
