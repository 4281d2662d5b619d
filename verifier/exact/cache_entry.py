"""One cache entry on disk: authenticated with a per-user secret, read back within bounds.

A cache folder may come from someone else (a repository can ship one, a CI
cache can be restored from another branch, a shared filesystem can be
written by other users). An entry it holds must never change a verdict, so:

* **Authenticated.** The file is ``<HMAC-SHA256 hex>\\n<JSON body>``; the MAC
  covers a format tag, the entry's key and the body, under a secret only this
  user holds. An entry written by anyone without the secret, or copied under
  another key, or edited, fails the check and is a miss (warned once per
  process, then rewritten). The body is parsed only after its MAC matched.
* **Bounded.** The file is opened without following symlinks and without
  blocking (a FIFO, ``/dev/zero``), must be a regular file of at most
  :data:`MAX_ENTRY_BYTES`, and at most that many bytes plus one are read.
  Anything else is a miss, never an error or a hang.

The secret: ``$VERIFIER_CACHE_KEY`` (the secret itself), else the file
``$VERIFIER_CACHE_KEY_FILE``, else ``$XDG_CONFIG_HOME/verifier/cache.key``
(``~/.config/verifier/cache.key``), created on first use with 32 random bytes,
mode 0600, atomically. A key file that another user owns or that group or
others may write is refused (the cache is then off, with a warning): whoever
can write the secret can forge entries. A cache shared between users or
machines needs the same secret on each: give it through one of the two
variables.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
import warnings
from pathlib import Path

MAX_ENTRY_BYTES = 64 * 2**20          # the largest tape of the built-in library is 0.4 MB
MAX_KEY_FILE_BYTES = 4096
_TAG = b"verifier-cache-entry-v2\0"
_warned: set[str] = set()


class CacheWarning(UserWarning):
    """The disk cache ignored something it could not trust (said once per process and kind)."""


def warn_once(kind: str, message: str) -> None:
    if kind not in _warned:
        _warned.add(kind)
        warnings.warn(message, CacheWarning, stacklevel=3)


def mac(secret: bytes, key: str, body: bytes) -> str:
    return hmac.new(secret, _TAG + key.encode() + b"\0" + body, hashlib.sha256).hexdigest()


def encode(secret: bytes, key: str, data: dict) -> bytes:
    # json.dumps, not json.dump: only the one-shot encoder is the C one (a cold tape's write: 3x faster)
    body = json.dumps(data, separators=(",", ":")).encode()
    return mac(secret, key, body).encode() + b"\n" + body


def read_bounded(path: Path, limit: int = MAX_ENTRY_BYTES) -> bytes | None:
    """The bytes of a regular file of at most ``limit`` bytes, or None (symlink, FIFO, device, too big, absent)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return None if size > limit else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def decode(secret: bytes, key: str, raw: bytes) -> tuple[dict | None, str]:
    """``(data, "")`` for an authentic, well-formed entry, else ``(None, why)``: ``unauthenticated`` or ``corrupt``."""
    head, sep, body = raw.partition(b"\n")
    if not sep or len(head) != 64:
        return None, "unauthenticated"
    if not hmac.compare_digest(head, mac(secret, key, body).encode()):
        return None, "unauthenticated"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError, MemoryError):
        return None, "corrupt"
    if not isinstance(data, dict):
        return None, "corrupt"
    return data, ""


def load_secret() -> bytes | None:
    """This user's cache secret (see the module doc), or None when there is none to be had (cache off)."""
    given = os.environ.get("VERIFIER_CACHE_KEY")
    if given:
        if len(given) < 16:
            warn_once("secret", "VERIFIER_CACHE_KEY is shorter than 16 characters: the disk cache is off. "
                      "Give a long random secret (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`).")
            return None
        return given.encode()
    if os.environ.get("VERIFIER_CACHE_KEY_FILE"):
        return _read_key_file(Path(os.environ["VERIFIER_CACHE_KEY_FILE"]))
    try:
        path = default_key_file()
    except RuntimeError:                        # no home folder to keep a secret in
        return None
    if not os.path.lexists(path):
        _create_key_file(path)
    return _read_key_file(path)


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "verifier" / "cache.key"


def _create_key_file(path: Path) -> None:
    """Write 32 random bytes (hex) to ``path``, mode 0600, all at once: a racing process keeps the first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache.key.", suffix=".tmp")   # mode 0600
    except OSError:
        return
    try:
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode())     # 65 bytes: one write
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)                      # fails if another process made one first: theirs stands
    except OSError:
        pass
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _read_key_file(path: Path) -> bytes | None:
    try:
        info = os.lstat(path)
    except OSError:
        warn_once("secret", f"the cache key file {path} cannot be read: the disk cache is off.")
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        warn_once("secret", f"the cache key file {path} is not a regular file of yours that only you can write: "
                  f"the disk cache is off. Remove it (a new one is made) or `chmod 600 {path}`.")
        return None
    raw = read_bounded(path, MAX_KEY_FILE_BYTES)
    secret = raw.strip() if raw else b""
    if len(secret) < 16:
        warn_once("secret", f"the cache key file {path} holds no secret of at least 16 bytes: the disk cache is off. "
                  "Remove it to have a new one made.")
        return None
    return secret
