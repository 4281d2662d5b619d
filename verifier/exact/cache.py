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
from), written atomically, each authenticated with the user's secret and read
back within bounds (:mod:`verifier.exact.cache_entry`). An entry that is not
authentic, or corrupt, or not a regular file, is a miss: it cannot change a
verdict.

Location: ``$VERIFIER_CACHE_DIR``, else ``$XDG_CACHE_HOME/verifier``, else
``~/.cache/verifier`` (never the working directory, which may hold a folder
someone else made). ``VERIFIER_CACHE=off`` switches it off.
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
from . import cache_entry as entry
from . import fingerprint, mirror

FORMAT = 2     # 2: entries carry a MAC (cache_entry.py)
# The exact engine's sources: a change to any of them changes what a cached tape means.
# Paths relative to the ``verifier`` package: the whole exact side, the case language that feeds it, and
# the directional checks whose exact values are cached.
_ENGINE_FILES = ("exact", "cases/language.py", "cases/language_check.py", "torch_side/forward_mode.py",
                 "torch_side/second_order.py")


def default_dir() -> Path:
    """Where the cache lives unless told otherwise: the user's cache folder, never the working directory."""
    if os.environ.get("VERIFIER_CACHE_DIR"):
        return Path(os.environ["VERIFIER_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "verifier"
    return Path.home() / ".cache" / "verifier"


def enabled_by_default() -> bool:
    return os.environ.get("VERIFIER_CACHE", "on").strip().lower() not in ("0", "off", "no", "false")


class Cache:
    """Compiled tapes (and, with ``values``, exact results at a point) on disk, one file per key.

    Every entry is authenticated (see :mod:`verifier.exact.cache_entry`); ``secret`` overrides the
    user's secret (bytes), e.g. for a cache shared between machines. ``rejected`` counts entries that
    were present but not trusted (bad or missing MAC, not a regular file, too big, malformed).
    """

    def __init__(self, directory: str | os.PathLike | None = None, *, values: bool = True,
                 secret: bytes | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_dir()
        self.values = values
        self.hits = 0
        self.misses = 0
        self.rejected = 0
        self._secret = secret

    @property
    def secret(self) -> bytes | None:
        if self._secret is None:
            self._secret = entry.load_secret() or b""
        return self._secret or None

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, key: str) -> dict | None:
        """The entry under ``key`` if it is there, authentic and well-formed; None (a miss) otherwise."""
        secret = self.secret
        raw = entry.read_bounded(self.path(key)) if secret else None
        data, why = entry.decode(secret, key, raw) if raw is not None else (None, "")
        if raw is None and secret and os.path.lexists(self.path(key)):
            why = "corrupt"                        # a symlink, a FIFO, a device, a folder or too big
        if data is not None and (data.get("format") != FORMAT or data.get("key") != key):
            data, why = None, "corrupt"
        if data is None:
            self.misses += 1
            if why:
                self.rejected += 1
                entry.warn_once(why, f"the verifier's disk cache in {self.directory} holds entries that "
                                f"{'are not signed with your cache key' if why == 'unauthenticated' else 'are damaged'}"
                                f" (first: {self.path(key)}); they are ignored and recomputed, never trusted.")
            return None
        self.hits += 1
        return data

    def malformed(self, key: str) -> None:
        """An authentic entry whose content the caller could not use: count it a miss, not a hit."""
        self.hits -= 1
        self.misses += 1
        self.rejected += 1
        entry.warn_once("corrupt", f"the verifier's disk cache in {self.directory} holds entries that are damaged "
                        f"(first: {self.path(key)}); they are ignored and recomputed, never trusted.")

    def store(self, key: str, data: dict) -> None:
        """Write ``data`` under ``key`` atomically; a cache that cannot be written is silently skipped."""
        secret = self.secret
        if not secret:
            return
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        except OSError:
            return
        try:
            os.close(fd)
            with open(tmp, "wb") as fh:
                fh.write(entry.encode(secret, key, {**data, "format": FORMAT, "key": key}))
            os.replace(tmp, path)             # replaces a planted symlink itself, never its target
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
    behaviour is not captured by anything we could hash reliably. Nor are cases
    that call a mirror function holding a value with no deterministic content.
    """
    fn = case.sympy_fn
    if not hasattr(fn, "source") or not hasattr(fn, "functions"):
        return None
    try:
        functions = _mirror_fingerprint(fn.functions)
    except fingerprint.Unkeyable:
        return None                   # cannot be keyed: computed every time rather than risk a stale entry
    parts: list = [FORMAT, kind, _versions(), _engine_hash(), fn.source, functions]
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
    """What each mirror function the expression calls computes, as it is *now* in memory.

    A test (or a user) that swaps a mirror entry at run time, or changes a value one captures, a default
    or a helper it calls, gets a different key (:mod:`verifier.exact.fingerprint`), so a cached tape of
    the old definition is never reused for the new one. Raises ``fingerprint.Unkeyable`` when some
    function holds a value with no deterministic content.
    """
    out = []
    for name in sorted(names):
        try:
            fn = mirror.resolve(name)
        except Exception:  # an unknown name fails later, with the proper error
            out.append([name, None])
            continue
        out.append([name, fn.name, fn.elementwise, fn.domain, fn.analytic, fingerprint.digest(fn.sym)])
    return out


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
        except (KeyError, TypeError, ValueError, AttributeError):
            cache.malformed(key)
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
    if data is not None:
        cache.malformed(key)
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
