"""The disk cache can never turn a wrong gradient into a pass (issue 13, items 2 and 3).

Each test plants an entry that would make a wrong gradient pass if it were
trusted (and shows that it would, by forging it with the user's own secret),
then checks that the real cache ignores it: a poisoned entry (no MAC, another
user's MAC, an entry copied under another key), a stale one (a mirror
function that differs only in a captured value, a default or a helper), and
corrupt ones (wrong shape, deep nesting, a symlink to /dev/zero, a FIFO,
truncated, over the size limit, a folder).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import verifier
from verifier.exact import cache_entry, mirror
from verifier.exact.cache import Cache, case_key, default_dir
from verifier.exact.values import cached_exact
from verifier.run.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"the-user's-own-secret-0123456789"
OTHER = b"someone-else's-secret-9876543210"
INPUTS = {"x": {"shape": [4], "sample": "normal", "seed": 3}}


@pytest.fixture(autouse=True)
def _own_secret_and_quiet(monkeypatch, tmp_path):
    """Each test gets its own config folder (for the key file) and warnings state."""
    monkeypatch.delenv("VERIFIER_CACHE_KEY", raising=False)
    monkeypatch.delenv("VERIFIER_CACHE_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(cache_entry, "_warned", set())


def _wrong():
    """torch computes 2x, the definition says 3x: the gradient is wrong and must fail."""
    return verifier.make_case("poison.target", INPUTS, torch="2*x", sympy="3*x", grad_output="random")


def _right_for_2x():
    return verifier.make_case("poison.source", INPUTS, forward="2*x", grad_output="random")


def _run(case, cache):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cache_entry.CacheWarning)
        return Runner(cache=cache, forward_mode=False, second_order=False).run(case, "float64")


def _poisoned_tape(tmp_path) -> dict:
    """The cached tape of ``2*x``: stored under the key of ``sympy: 3*x`` it would make 2x look right."""
    source = Cache(tmp_path / "source", values=False, secret=SECRET)
    assert _run(_right_for_2x(), source).status == "pass"
    raw = source.path(case_key(_right_for_2x(), "tape")).read_bytes()
    return json.loads(raw.split(b"\n", 1)[1])


def _plant(cache: Cache, key: str, content: bytes) -> Path:
    path = cache.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_the_planted_tape_would_give_a_false_pass_if_trusted(tmp_path):
    """The premise of every poisoning test: forged with the user's own secret, the entry does fool the run."""
    cache = Cache(tmp_path / "c", values=False, secret=SECRET)
    key = case_key(_wrong(), "tape")
    data = {**_poisoned_tape(tmp_path), "key": key}
    _plant(cache, key, cache_entry.encode(SECRET, key, data))
    assert _run(_wrong(), cache).status == "pass" and cache.hits == 1
    assert _run(_wrong(), Cache(tmp_path / "fresh", values=False, secret=SECRET)).status == "fail"


@pytest.mark.parametrize("how", ["plain JSON without a MAC", "signed with another user's secret",
                                 "a MAC of garbage", "the user's MAC of another key"])
def test_a_poisoned_entry_is_ignored_and_rewritten(tmp_path, how):
    cache = Cache(tmp_path / "c", values=False, secret=SECRET)
    key = case_key(_wrong(), "tape")
    data = {**_poisoned_tape(tmp_path), "key": key}
    body = json.dumps(data).encode()
    content = {"plain JSON without a MAC": body,
               "signed with another user's secret": cache_entry.encode(OTHER, key, data),
               "a MAC of garbage": b"0" * 64 + b"\n" + body,
               "the user's MAC of another key": cache_entry.encode(SECRET, case_key(_right_for_2x(), "tape"),
                                                                   data)}[how]
    path = _plant(cache, key, content)
    with pytest.warns(cache_entry.CacheWarning, match="not signed with your cache key"):
        result = Runner(cache=cache, forward_mode=False, second_order=False).run(_wrong(), "float64")
    assert result.status == "fail" and cache.hits == 0 and cache.rejected == 1
    assert path.read_bytes() != content                       # rewritten with the right tape
    again = Cache(tmp_path / "c", values=False, secret=SECRET)
    assert _run(_wrong(), again).status == "fail" and again.hits == 1 and again.rejected == 0


def test_a_poisoned_exact_value_is_ignored(tmp_path):
    """The values cache (exact Jᵀv at the point) is authenticated like tapes."""
    cache = Cache(tmp_path / "c", secret=SECRET)
    runner = Runner(cache=cache, forward_mode=False, second_order=False)
    case = _wrong()
    model = runner.model(case)
    point = {"x": case.inputs[0].values().astype(np.float64)}
    weights = np.ones(4)
    honest = cached_exact(None, model, point, weights)
    from verifier.exact.cache import _values_key
    key = _values_key(cache, model, point, weights, "values")
    forged = {"output": [0.0] * 4, "output_shape": [4], "vjp": {"x": [2.0] * 4}, "shapes": {"x": [4]},
              "route": "forged", "route_gap": 0.0, "may_kink": False, "format": 2, "key": key}
    _plant(cache, key, cache_entry.encode(OTHER, key, forged))
    with pytest.warns(cache_entry.CacheWarning):
        got = cached_exact(cache, model, point, weights)
    np.testing.assert_array_equal(got.vjp["x"], honest.vjp["x"])
    assert got.route != "forged" and np.allclose(got.vjp["x"], 3.0)


# --- corrupt entries: a miss, never an error or a hang ------------------------------------------------

def _corrupt(kind: str, cache: Cache, key: str, tmp_path: Path) -> None:
    path = cache.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "a list, authentic":
        path.write_bytes(_signed(key, b"[1, 2, 3]"))
    elif kind == "no tape, authentic":
        path.write_bytes(_signed(key, json.dumps({"format": 2, "key": key, "tape": {"ops": [1]}}).encode()))
    elif kind == "nested 100000 deep, authentic":
        path.write_bytes(_signed(key, b"[" * 100_000 + b"]" * 100_000))
    elif kind == "a symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "truncated":
        source = Cache(tmp_path / "t", values=False, secret=SECRET)
        _run(_wrong(), source)
        full = source.path(key).read_bytes()
        path.write_bytes(full[: len(full) // 2])
    elif kind == "over the size limit":
        with open(path, "wb") as fh:
            fh.truncate(cache_entry.MAX_ENTRY_BYTES + 1)          # sparse: costs no disk
    elif kind == "a folder":
        path.mkdir()
    elif kind == "a symlink to a good entry elsewhere":
        source = Cache(tmp_path / "s", values=False, secret=SECRET)
        _run(_wrong(), source)
        path.symlink_to(source.path(key))


def _signed(key: str, body: bytes) -> bytes:
    return cache_entry.mac(SECRET, key, body).encode() + b"\n" + body


CORRUPT = ["a list, authentic", "no tape, authentic", "nested 100000 deep, authentic", "a symlink to /dev/zero",
           "a FIFO", "truncated", "over the size limit", "a folder", "a symlink to a good entry elsewhere"]


@pytest.mark.parametrize("kind", CORRUPT)
def test_a_corrupt_entry_is_a_miss_and_the_wrong_gradient_still_fails(tmp_path, kind):
    cache = Cache(tmp_path / "c", values=False, secret=SECRET)
    key = case_key(_wrong(), "tape")
    _corrupt(kind, cache, key, tmp_path)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail(f"reading {kind} hung"))
    signal.alarm(60)
    try:
        result = _run(_wrong(), cache)
    finally:
        signal.alarm(0)
    assert result.status == "fail" and result.message and "cache" not in result.message.lower()
    assert cache.hits == 0 and cache.rejected == 1
    right = verifier.make_case("poison.target", INPUTS, forward="3*x", grad_output="random")
    assert _run(right, Cache(tmp_path / "c", values=False, secret=SECRET)).status == "pass"
    if kind == "a symlink to /dev/zero":
        assert not cache.path(key).is_symlink() and Path("/dev/zero").is_char_device()   # replaced, not followed


def test_the_warning_is_given_once_per_process(tmp_path):
    cache = Cache(tmp_path / "c", values=False, secret=SECRET)
    for case in (_wrong(), _right_for_2x()):
        _plant(cache, case_key(case, "tape"), b"{}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for case in (_wrong(), _right_for_2x()):
            Runner(cache=cache, forward_mode=False, second_order=False).run(case, "float64")
    assert cache.rejected == 2
    assert len([w for w in caught if issubclass(w.category, cache_entry.CacheWarning)]) == 1


# --- the secret ---------------------------------------------------------------------------------------

def test_the_secret_is_made_once_private_and_reused(tmp_path):
    first = Cache(tmp_path / "c").secret
    key_file = tmp_path / "config" / "verifier" / "cache.key"
    assert first and len(first) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Cache(tmp_path / "d").secret == first
    assert [p.name for p in key_file.parent.iterdir()] == ["cache.key"]      # no temporary left


@pytest.mark.parametrize("mode", [0o622, 0o666])
def test_a_key_file_others_may_write_turns_the_cache_off(tmp_path, mode):
    key_file = tmp_path / "config" / "verifier" / "cache.key"
    Cache(tmp_path / "c").secret
    key_file.chmod(mode)
    cache = Cache(tmp_path / "c", values=False)
    with pytest.warns(cache_entry.CacheWarning, match="only you can write"):
        assert cache.secret is None
    assert _run(_wrong(), cache).status == "fail"
    assert not list((tmp_path / "c").rglob("*.json"))                      # nothing stored without a secret


def test_a_shared_secret_serves_a_shared_cache(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    monkeypatch.setenv("VERIFIER_CACHE_KEY", "a-secret-the-team-shares-0123456789")
    _run(_wrong(), Cache(shared, values=False))
    second = Cache(shared, values=False)
    assert _run(_wrong(), second).status == "fail" and second.hits == 1
    key_file = tmp_path / "team.key"
    key_file.write_text("a-secret-the-team-shares-0123456789\n")
    key_file.chmod(0o640)
    monkeypatch.delenv("VERIFIER_CACHE_KEY")
    monkeypatch.setenv("VERIFIER_CACHE_KEY_FILE", str(key_file))
    third = Cache(shared, values=False)
    assert _run(_wrong(), third).status == "fail" and third.hits == 1
    stranger = Cache(shared, values=False, secret=OTHER)
    assert _run(_wrong(), stranger).status == "fail" and stranger.hits == 0 and stranger.rejected == 1


def test_a_short_shared_secret_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("VERIFIER_CACHE_KEY", "short")
    with pytest.warns(cache_entry.CacheWarning, match="shorter than 16"):
        assert Cache(tmp_path).secret is None


# --- where the cache lives ----------------------------------------------------------------------------

def test_the_default_cache_is_the_users_not_the_working_directorys(monkeypatch, tmp_path):
    monkeypatch.delenv("VERIFIER_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert default_dir() == tmp_path / "home" / ".cache" / "verifier"


def test_a_cache_folder_shipped_in_a_repository_changes_no_verdict(tmp_path):
    """End to end: `verifier run` in a checkout that holds a planted .cache/verifier still fails the wrong
    gradient, even when the planted entry is signed with the user's own secret: the cache is not read
    from the working directory."""
    repo = tmp_path / "repo"
    (repo / "cases").mkdir(parents=True)
    (repo / "cases" / "p.yaml").write_text(
        "cases:\n  - name: poison.target\n    inputs:\n      x: {shape: [4], sample: normal, seed: 3}\n"
        "    torch: 2*x\n    sympy: 3*x\n    grad_output: random\n    dtypes: [float64]\n")
    planted = Cache(repo / ".cache" / "verifier", values=False, secret=SECRET)
    key = case_key(_wrong(), "tape")
    case = verifier.load_file(repo / "cases" / "p.yaml").cases[0]
    assert case_key(case, "tape") == key
    _plant(planted, key, cache_entry.encode(SECRET, key, {**_poisoned_tape(tmp_path), "key": key}))
    key_file = tmp_path / "home" / ".config" / "verifier" / "cache.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_bytes(SECRET)
    key_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERIFIER_CACHE", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "verifier", "run", "cases", "--report-dir", "r"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fail" in (repo / "r" / "summary.csv").read_text()
    assert list((tmp_path / "home" / ".cache" / "verifier").rglob("*.json"))      # the user's cache was used
    shutil.rmtree(tmp_path / "home")


# --- item 3: the key follows what a mirror function computes -------------------------------------------

def _scaled_tanh_closure(k):
    def sym(x):
        return np.vectorize(lambda e: k * sp.tanh(e), otypes=[object])(x)
    return sym


def _scaled_tanh_default(x, k=1):
    return np.vectorize(lambda e: k * sp.tanh(e), otypes=[object])(x)


def _scaled_tanh_default_wrong(x, k=1.001):
    return np.vectorize(lambda e: k * sp.tanh(e), otypes=[object])(x)


_FACTOR = 1


def _factor():
    return _FACTOR


def _scaled_tanh_helper(x):
    return np.vectorize(lambda e: _factor() * sp.tanh(e), otypes=[object])(x)


def _swap(monkeypatch, sym):
    right = mirror.FUNCTIONS["tanh"]
    monkeypatch.setitem(mirror.FUNCTIONS, "tanh", mirror.Function(**{**right.__dict__, "sym": sym}))


@pytest.mark.parametrize("what", ["a captured value", "a default argument", "a helper's global"])
def test_a_mirror_changed_only_in_what_it_captures_is_not_served_stale(tmp_path, monkeypatch, what):
    case = verifier.make_case("stale.tanh", INPUTS, forward="torch.tanh(x)", grad_output="random")
    cache = Cache(tmp_path / "c", secret=SECRET)
    right, wrong = {"a captured value": (_scaled_tanh_closure(1), _scaled_tanh_closure(1.001)),
                    "a default argument": (_scaled_tanh_default, _scaled_tanh_default_wrong),
                    "a helper's global": (_scaled_tanh_helper, _scaled_tanh_helper)}[what]
    if what == "a default argument":       # the same code, only the default differs
        wrong = type(_scaled_tanh_default)(_scaled_tanh_default.__code__, _scaled_tanh_default.__globals__,
                                           "wrong", (1.001,))
    _swap(monkeypatch, right)
    before = case_key(case, "tape")
    assert _run(case, cache).status == "pass"
    _swap(monkeypatch, wrong)
    if what == "a helper's global":
        monkeypatch.setattr(sys.modules[__name__], "_FACTOR", 1.001)
    assert case_key(case, "tape") != before
    stale = Cache(tmp_path / "c", secret=SECRET)
    assert _run(case, stale).status == "fail" and stale.hits == 0


def test_a_mirror_holding_an_object_without_content_is_not_cached(tmp_path, monkeypatch):
    class Opaque:
        factor = 1
    holder = Opaque()

    def sym(x):
        return np.vectorize(lambda e: holder.factor * sp.tanh(e), otypes=[object])(x)
    _swap(monkeypatch, sym)
    case = verifier.make_case("stale.opaque", INPUTS, forward="torch.tanh(x)", grad_output="random")
    assert case_key(case, "tape") is None
    cache = Cache(tmp_path / "c", secret=SECRET)
    assert _run(case, cache).status == "pass"
    holder.factor = 1.001
    assert _run(case, cache).status == "fail" and cache.hits == 0
    assert not list((tmp_path / "c").rglob("*.json"))


def test_the_key_is_the_same_in_another_process():
    code = ("import verifier; from verifier.exact.cache import case_key; "
            "print(case_key(verifier.make_case('k', {'x': [1.0, 2.0]}, "
            "forward='F.softmax(x, dim=0).norm() + torch.tanh(x).sum()'), 'tape'))")
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(keys) == 1 and len(next(iter(keys)).strip()) == 64


def test_run_time_state_reachable_from_a_mirror_function_keeps_the_key_stable():
    """The matrix norms reach the numeric route's notes (a ContextVar) and a memo of singular values: both are
    run-time state, so a norm case stays keyable and its key does not move when the memo fills."""
    import verifier
    from verifier.exact.cache import case_key
    from verifier.exact.mirror import reductions
    case = verifier.make_case("k", {"x": [1.0, 2.0]}, forward="x.norm() + torch.tanh(x).sum()")
    before = case_key(case, "tape")
    assert before is not None and len(before) == 64
    reductions._svdvals(np.array([[1.0, 2.0], [3.0, 5.0]], dtype=object))
    assert reductions._SVD_MEMO and case_key(case, "tape") == before
