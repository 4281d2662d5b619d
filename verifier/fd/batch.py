"""Evaluate g(x) = Σ v⊙f(x) at many perturbed copies of one input, in few torch calls.

Finite differences need g at hundreds of points that differ from the base
point in one input element each. Calling the forward once per point costs a
Python round trip per point; here the points are stacked along a new leading
dimension and evaluated by ``torch.func.vmap`` over the forward, in chunks
that keep the stacked copies under ``BATCH_VALUES`` numbers.

vmap cannot run every forward (a custom ``autograd.Function`` without a vmap
rule, a ``.item()`` call, data-dependent Python control flow). Such a forward
raises on the first batched call, and so does one whose batched result
differs from the unbatched result; either way the objective falls back to
one call per point and records why (``fallback``).
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np
import torch

#: The most numbers (rows × elements of the perturbed input, or of the output)
#: one batched call may stack: 2**22 float64 values is 32 MiB (64 MiB complex).
BATCH_VALUES = 1 << 22

# A batched row must reproduce the unbatched value this closely (relative to
# Σ|v⊙f|): batched kernels may sum in another order, nothing more.
_AGREE = 64 * float(np.finfo(np.float64).eps)


class Objective:
    """g(x) = Σ v⊙f(x) around a fixed base point, evaluated for batches of one input's copies."""

    def __init__(self, f: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
                 base: Mapping[str, torch.Tensor], weights: torch.Tensor | None, *, batch: bool = True) -> None:
        self.f = f
        self.base = dict(base)
        self.weights = weights
        self.batch = batch
        self.fallback: str | None = None if batch else "batching switched off"
        self.calls = 0                        # torch forward calls made (batched calls count once)
        self.points = 0                       # points evaluated
        self._validated: set[str] = set()      # inputs whose batched forward was checked
        y = self._forward(self.base)
        self.out_numel = max(1, y.numel())
        self.out_shape = tuple(y.shape)
        self.base_terms = self._weighted(y)
        self.value = self._reduce(y)
        # Σ|v⊙f| at the base point: the size of what g's rounding is relative to.
        self.magnitude = float(self._reduce(y, absolute=True).real)

    def _forward(self, args: Mapping[str, torch.Tensor]) -> torch.Tensor:
        y = self.f(args)
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"the forward returned a {type(y).__name__}, not a tensor")
        return y

    def _weighted(self, y: torch.Tensor) -> torch.Tensor:
        y = y if y.is_complex() else y.to(torch.float64)
        return y if self.weights is None else y * self.weights

    def _reduce(self, y: torch.Tensor, absolute: bool = False) -> torch.Tensor:
        terms = self._weighted(y)
        return (terms.abs() if absolute else terms).sum()

    def terms(self, name: str, shift: torch.Tensor) -> torch.Tensor:
        """The unreduced terms v⊙f with *every* element of input ``name`` moved by ``shift`` (its shape)."""
        self.calls += 1
        self.points += 1
        return self._weighted(self._forward({**self.base, name: self.base[name] + shift}))

    def at(self, args: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """g at one point (inputs by name; missing ones take the base value)."""
        self.calls += 1
        self.points += 1
        return self._reduce(self._forward({**self.base, **args}))

    def along(self, name: str, flat_index: np.ndarray, offsets: torch.Tensor) -> torch.Tensor:
        """g at the base point with element ``flat_index[r]`` of input ``name`` moved by ``offsets[r]``.

        Returns a (R,) tensor. The perturbed copies are built chunk by chunk,
        so memory stays bounded however many points there are.
        """
        base = self.base[name]
        flat = base.reshape(-1)
        per_row = max(flat.numel(), self.out_numel, 1)
        chunk = max(1, BATCH_VALUES // per_row)
        parts = []
        for start in range(0, len(flat_index), chunk):
            idx = torch.as_tensor(np.asarray(flat_index[start:start + chunk]), dtype=torch.long)
            rows = flat.expand(len(idx), flat.numel()).clone()
            rows[torch.arange(len(idx)), idx] += offsets[start:start + chunk].to(rows.dtype)
            rows = rows.reshape((len(idx),) + tuple(base.shape))
            parts.append(self._rows(name, rows))
        if not parts:
            return torch.empty(0, dtype=torch.complex128 if base.is_complex() else torch.float64)
        return torch.cat(parts)

    def _rows(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        if self.fallback is None:
            try:
                return self._batched(name, rows)
            except Exception as exc:   # vmap cannot run this forward: loop instead (recorded)
                self.fallback = f"one call per point (vmap: {type(exc).__name__}: {str(exc)[:120]})"
        return torch.stack([self.at({name: row}) for row in rows])

    def _batched(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        def g(row):
            return self._reduce(self._forward({**self.base, name: row}))

        with warnings.catch_warnings():
            # an op without a batching rule runs in a loop inside vmap and says so; slower, still right
            warnings.filterwarnings("ignore", message=r".*not yet implemented the batching rule.*")
            out = torch.func.vmap(g)(rows)
        self.calls += 1
        self.points += rows.shape[0]
        if name not in self._validated:
            # The first row once more, unbatched: the batched forward must compute the same function.
            single = self.at({name: rows[0]})
            gap = float(torch.abs(out[0] - single))
            if not gap <= _AGREE * (self.magnitude + abs(complex(single))):
                raise RuntimeError(f"the batched forward gave {complex(out[0])}, the unbatched {complex(single)}")
            self._validated.add(name)
        return out
