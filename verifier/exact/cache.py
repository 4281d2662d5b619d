"""An on-disk cache of compiled symbolic work, keyed by the case's content and the versions.

Building a case's SymPy graph and its Jacobian is the slow part of a cold
run, and it depends only on the case's *symbolic identity*: the expression,
the input shapes, which inputs are differentiated, the values of index and
mask inputs, and the code that turns them into expressions (the mirror, the
compiler). The cache stores the compiled :class:`~verifier.exact.tape.Tape` under
a SHA-256 of all of that plus the versions of Python, SymPy, mpmath, numpy
and this package and a hash of the exact engine's source files. Values at
the point (and so the dtype) are *not* part of the key: a warm run still
evaluates the tape at the point and derives Jᵀv there.

Files are JSON (never pickle: a cache directory is no place to run code
from), written atomically. A corrupt or unreadable entry is a miss.

Location: ``$VERIFIER_CACHE_DIR``, else ``$XDG_CACHE_HOME/verifier``, else
``.cache/verifier`` under the current directory. ``VERIFIER_CACHE=off``
switches it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import mpmath
import numpy as np
import sympy

from ..cases.case import Case
from . import mirror

FORMAT = 1
# The exact engine's sources: a change to any of them changes what a cached tape means.
# Paths relative to the ``verifier`` package: the whole exact side, the case language that feeds it, and
# the directional checks whose exact values are cached.
_ENGINE_FILES = ("exact", "cases/language.py", "cases/language_check.py", "torch_side/forward_mode.py",
                 "torch_side/second_order.py")


def default_dir() -> Path:
    """Where the cache lives unless told otherwise (see the module doc)."""
    if os.environ.get("VERIFIER_CACHE_DIR"):
        return Path(os.environ["VERIFIER_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "verifier"
    return Path.cwd() / ".cache" / "verifier"


def enabled_by_default() -> bool:
    return os.environ.get("VERIFIER_CACHE", "on").strip().lower() not in ("0", "off", "no", "false")


class Cache:
    """Compiled tapes (and, with ``values``, exact results at a point) on disk, one JSON file per key."""

    def __init__(self, directory: str | os.PathLike | None = None, *, values: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else default_dir()
        self.values = values
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, key: str) -> dict | None:
        try:
            with open(self.path(key), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
            self.misses += 1
            return None
        self.hits += 1
        return data

    def store(self, key: str, data: dict) -> None:
        """Write ``data`` under ``key`` atomically; a cache that cannot be written is silently skipped."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        except OSError:
            return
        try:
            os.close(fd)
            # json.dumps, not json.dump: only the one-shot encoder is the C one (a cold tape's write: 3x faster)
            text = json.dumps({**data, "format": FORMAT, "key": key}, separators=(",", ":"))
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def default_cache() -> Cache | None:
    """The cache a Runner uses when not told otherwise (None when switched off)."""
    return Cache() if enabled_by_default() else None


def case_key(case: Case, kind: str) -> str | None:
    """The SHA-256 key of ``case``'s symbolic identity, or None when it cannot be keyed.

    Cases whose symbolic side is a Python callable are not cached: a callable's
    behaviour is not captured by anything we could hash reliably.
    """
    fn = case.sympy_fn
    if not hasattr(fn, "source") or not hasattr(fn, "functions"):
        return None
    parts: list = [FORMAT, kind, _versions(), _engine_hash(), fn.source, _mirror_fingerprint(fn.functions)]
    for spec in case.inputs:
        shape = list(np.shape(spec.value)) if spec.value is not None else list(spec.shape)
        entry = [spec.name, shape, spec.dtype, bool(spec.requires_grad)]
        if spec.dtype is not None:       # index / mask values steer the graph's structure
            entry.append(hashlib.sha256(np.ascontiguousarray(spec.values()).tobytes()).hexdigest())
        parts.append(entry)
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


@lru_cache(maxsize=1)
def _versions() -> list[str]:
    import importlib.metadata as md
    try:
        own = md.version("verifier")
    except md.PackageNotFoundError:
        own = "unknown"
    return [sys.version.split()[0], sympy.__version__, mpmath.__version__, np.__version__, own]


@lru_cache(maxsize=1)
def _engine_hash() -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _ENGINE_FILES:
        target = root / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _mirror_fingerprint(names) -> list:
    """The code of each mirror function the expression calls, as it is *now* in memory.

    A test (or a user) that swaps a mirror entry at run time gets a different
    key, so a cached tape of the old definition is never reused for the new one.
    """
    out = []
    for name in sorted(names):
        try:
            fn = mirror.resolve(name)
        except Exception:  # an unknown name fails later, with the proper error
            out.append([name, None])
            continue
        code = getattr(getattr(fn.sym, "__wrapped__", fn.sym), "__code__", None)
        if code is None:
            out.append([name, repr(fn.sym)])
            continue
        out.append([name, _code_digest(code)])
    return out


def _code_digest(code) -> str:
    """A digest of a code object that is stable across processes (nested code objects by content)."""
    digest = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            digest.update(_code_digest(const).encode())
        else:
            digest.update(repr(const).encode())
    digest.update(repr(code.co_names).encode())
    return digest.hexdigest()


def cached_arrays(cache: Cache | None, model, point, weights, kind: str, compute, *, extra=None) -> dict:
    """Arrays by name that ``compute()`` returns for the model at a point, cached like values.

    The directional checks' exact sides (J·u, H·w) go through here: the
    second-order one walks SymPy's directional derivative of the graph, so on
    a cached tape it would rebuild SymPy in every run. ``extra`` (arrays by
    name: the direction) joins the key.
    """
    key = _values_key(cache, model, point, weights, kind, extra=extra)
    data = cache.load(key) if key else None
    if data is not None:
        try:
            return {k: np.array(v, dtype=np.float64).reshape(data["shapes"][k]) for k, v in data["arrays"].items()}
        except (KeyError, TypeError, ValueError):
            pass
    result = compute()
    if key:
        cache.store(key, {"arrays": {k: np.asarray(v, dtype=np.float64).ravel().tolist() for k, v in result.items()},
                          "shapes": {k: list(np.shape(v)) for k, v in result.items()}})
    return result


def cached_text(cache: Cache | None, model, point, kind: str, compute) -> str:
    """A string ``compute()`` says about the model at a point (where it is a kink), cached like values."""
    key = _values_key(cache, model, point, None, kind)
    data = cache.load(key) if key else None
    if data is not None and isinstance(data.get("text"), str):
        return data["text"]
    text = compute()
    if key:
        cache.store(key, {"text": text})
    return text


def _values_key(cache: Cache | None, model, point, weights, kind: str, extra=None) -> str | None:
    """The key of a result at a point: the tape's key plus the bytes of the point, the weights and ``extra``."""
    tape_key = getattr(model, "key", None)
    if cache is None or not cache.values or tape_key is None:
        return None
    digest = hashlib.sha256(f"{kind}:{tape_key}".encode())
    for name in sorted(point):
        arr = np.ascontiguousarray(np.asarray(point[name], dtype=np.float64))
        digest.update(f"{name}{arr.shape}".encode() + arr.tobytes())
    w = None if weights is None else np.ascontiguousarray(np.asarray(weights, dtype=np.float64))
    digest.update(b"none" if w is None else f"{w.shape}".encode() + w.tobytes())
    for name in sorted(extra or {}):
        arr = np.ascontiguousarray(np.asarray(extra[name], dtype=np.float64))
        digest.update(f"extra:{name}{arr.shape}".encode() + arr.tobytes())
    return digest.hexdigest()
