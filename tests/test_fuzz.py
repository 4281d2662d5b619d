"""Fuzzing the untrusted inputs: random and mutated expressions and case files.

Whatever comes in, the parser raises only ``ExpressionError``, the loader
returns only ``CaseError``s (one line each, none of them the loader's
"internal" catch-all), and a run of any expression the checker accepts ends
with a result. Nothing may hang: every example runs under an alarm that turns
a hang into a failure. Hypothesis' example counts and deadlines keep the file
to a few seconds; VERIFIER_FUZZ_SCALE=20 multiplies the example counts for
a deeper search.
"""

from __future__ import annotations

import contextlib
import os
import signal
import string
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from verifier import Runner, make_case
from verifier.cases.language import parse
from verifier.cases.loading import load_file
from verifier.errors import CaseError, ExpressionError
from verifier.exact import mirror

VARIABLES = frozenset({"x", "y", "i"})
KNOWN = lambda name: name in mirror.FUNCTIONS or name in mirror.ALIASES  # noqa: E731
SCALE = int(os.environ.get("VERIFIER_FUZZ_SCALE", "1"))
FAST = settings(max_examples=300 * SCALE, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
ALARM_SECONDS = 20


class Hang(Exception):
    """Raised by the alarm: the code under test did not return in time."""


@contextlib.contextmanager
def no_hang(seconds: int = ALARM_SECONDS):
    def ring(signum, frame):
        raise Hang(f"no answer within {seconds} s")
    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def parse_cleanly(source: str):
    """Parse ``source``; return the Expression, or None after a clean ExpressionError."""
    with no_hang():
        try:
            return parse(source, known_functions=KNOWN, variables=VARIABLES,
                         function_names=[*mirror.FUNCTIONS, *mirror.ALIASES])
        except ExpressionError as exc:
            message = str(exc)
            assert message and "\n" not in message, message
            return None


# --- expressions ---------------------------------------------------------------

NAMES = ["x", "y", "i", "z", "torch", "F", "nn", "__import__", "open", "eval", "exec", "getattr", "globals",
         "exp", "log", "sum", "mean", "softmax", "where", "matmul", "cat", "reshape", "einsum", "repeat", "pow",
         "__class__", "__builtins__", "lambda", "None", "True"]
ATTRS = ["T", "mT", "sum", "exp", "shape", "__class__", "__bases__", "__subclasses__", "__globals__", "data",
         "grad", "numpy", "nn", "functional", "linalg", "os", "system", "mean"]
NUMBERS = ["0", "1", "2", "-1", "0.5", "1e-3", "1e308", "1e400", "9", "99999999999999999999", "0x1f", "1j",
           "3.", ".5", "1_000", "9**9", "10**1000"]
OPERATORS = ["+", "-", "*", "/", "**", "@", "%", "//", "<<", "&", "|", "^", " and ", " or ", " in ", " is ",
             "<", ">", "==", "!=", " if x else "]
STRINGS = ["'a'", "'ij,jk->ik'", "'sum'", "'" + "a" * 80 + "'", "f'{x}'", "b'x'", "'os'"]


def expressions(depth: int = 3):
    leaf = st.sampled_from(NAMES + NUMBERS + STRINGS)
    if depth == 0:
        return leaf
    sub = st.deferred(lambda: expressions(depth - 1))
    kwarg = st.tuples(st.sampled_from(["dim", "keepdim", "_x", "**", "p"]), sub).map(lambda kv: f"{kv[0]}={kv[1]}")
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(OPERATORS), sub).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(["-", "+", "~", "not ", "*", "**"]), sub).map("".join),
        st.tuples(sub, st.sampled_from(ATTRS)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(st.sampled_from(NAMES + ["torch.exp", "F.softmax", "x.sum", "torch.nn.functional.relu",
                                           "torch.os.system", "x.__class__"]),
                  st.lists(st.one_of(sub, kwarg), max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(sub, st.lists(st.one_of(sub, st.sampled_from([":", "1:2", "::-1", "None", "...", "[0, 1]",
                                                                  "[[0]]", "x > 0"])),
                                min_size=1, max_size=3)).map(lambda t: f"{t[0]}[{', '.join(t[1])}]"),
        st.lists(sub, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
        st.lists(sub, max_size=3).map(lambda xs: f"({', '.join(xs)},)"),
        sub.map(lambda e: f"lambda: {e}"),
        sub.map(lambda e: f"[v for v in {e}]"),
        sub.map(lambda e: f"{{'k': {e}}}"),
        sub.map(lambda e: f"(w := {e})"),
    )


SEED_EXPRESSIONS = [
    "(3*(x+2)**2).mean()", "torch.sum(3*x*y)", "F.softmax(x, dim=0) * y.sum()", "where(x > 0, x, 0.5 * y)",
    "x[0:1] + x[-1]", "torch.nn.functional.relu(-x).exp()", "x.T.sum(dim=(0,), keepdim=True)",
    "einsum('i,i->', x, y)", "cat([x, y], dim=0).prod()",
]


@FAST
@given(st.text(max_size=300))
def test_random_text_is_parsed_or_cleanly_refused(source):
    parse_cleanly(source)


@FAST
@given(expressions())
def test_generated_expressions_are_parsed_or_cleanly_refused(source):
    parse_cleanly(source)


@st.composite
def mutated(draw, seeds=tuple(SEED_EXPRESSIONS)):
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "replace"]))
        piece = draw(st.sampled_from(list("()[]{},.:;*+-/@%<>=!'\"\\#_ \n\t\x00") + ["__", "lambda ", "**", "..",
                                                                                      "1e999", "import ", "\u00e9"]))
        if action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)):]
        elif action == "duplicate":
            text = text[:pos] + text[pos:pos + draw(st.integers(1, 20))] * draw(st.integers(2, 50)) + text[pos:]
        else:
            text = text[:pos] + piece + text[pos + 1:]
    return text


@FAST
@given(mutated())
def test_mutated_expressions_are_parsed_or_cleanly_refused(source):
    parse_cleanly(source)


def _run_accepted(source: str):
    expr = parse_cleanly(source)
    assume(expr is not None)
    try:
        with no_hang(60):
            case = make_case("fuzz.case", {"x": [0.7, -1.3], "y": [0.4, 1.9],
                                           "i": {"value": [1, 0], "dtype": "int64"}},
                             forward=source, grad_output="ones", timeout=10)
    except CaseError:
        return      # refused when the case loads (a constant out of range, ...): a clean verdict too
    with no_hang(60):
        result = Runner().run(case, "float64")
    assert result.status in ("pass", "fail", "error"), (source, result.status, result.message)


@settings(max_examples=80 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.one_of(expressions(), mutated()))
def test_accepted_expressions_run_to_a_result_without_hanging(source):
    """Whatever the checker accepts, a run ends with a verdict (``9**9**9`` must not compute for ever)."""
    _run_accepted(source)


@pytest.mark.parametrize("source", [
    pytest.param("x * 9**9**9", id="tower-of-powers"),
    pytest.param("x * 10.0**10**6", id="float-power"),
    pytest.param("x * (10**999 * 10**999 * 10**999 * 10**999 * 10**999 * 10**999)", id="product-of-giants"),
    pytest.param("x * (1e300 ** 1000)", id="exact-rational-power"),
])
def test_constant_blow_ups_are_refused_at_load_time(source):
    """No float holds these: refused when the case loads (issue 13), without computing them."""
    with no_hang(60), pytest.raises(CaseError, match="is not a finite number"):
        make_case("fuzz.constants", {"x": [1.0, 2.0]}, forward=source, grad_output="ones")


# --- case files -------------------------------------------------------------------

GOOD_FILE = (ROOT / "cases" / "seed.yaml").read_text()
GOOD_SMALL = """\
defaults:
  dtypes: [float64]
cases:
  - name: a.exp
    inputs:
      x: [[1.0, 2.0], [3.0, 4.0]]
      w: {shape: [2, 2], sample: normal, seed: 3}
      c: {shape: [2], fill: 0.5, requires_grad: false}
      i: {value: [1, 0], dtype: int64}
    forward: (x * w).exp().sum(dim=0) * c
    grad_output: ones
    tolerance: {float32: {rtol: 1e-4, atol: 1e-6}}
    timeout: 30
    expect: {grad_fn: MulBackward0}
"""


def load_cleanly(tmp_path: Path, text: str | bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    if isinstance(text, str):
        text = text.encode("utf-8", errors="surrogatepass")
    path.write_bytes(text)
    with no_hang():
        result = load_file(path)
    for err in result.errors:
        assert isinstance(err, CaseError)
        assert not getattr(err, "internal", False), f"the loader failed unexpectedly: {err}"
        message = str(err)
        assert message.startswith(str(path)) and "\n" not in message and "Traceback" not in message, message
        assert len(message) < 2000, message[:300]


FILE_SETTINGS = settings(max_examples=200 * SCALE, deadline=3000, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FILE_SETTINGS
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400)))
def test_random_files_load_or_fail_cleanly(tmp_path, text):
    load_cleanly(tmp_path, text)


YAML_PIECES = ["&a ", "*a", "*b", "&b [*a, *a, *a, *a]", "<<: *a\n", "!!python/object/apply:os.system ['ls']",
               "!!binary aGk=", "!!set {a, b}", "!!timestamp 2001-12-14", "!!float", "!!str ", "? complex\n",
               "[", "]", "{", "}", ": ", "- ", "\n", "\n  ", "\t", "'", '"', "#", "~", ".nan", ".inf", "-.inf",
               "1e999", "yes", "on", "0x1F", "0o17", "---\n", "...\n", "%YAML 1.1\n", "|\n  ", ">-\n  ", "\u2028",
               "name: a", "inputs: {x: 1.0}", "forward: x", "shape: [99999999999999999999]", "value: []",
               "dtypes: [float8]", "sample: normal", "std: -1", "timeout: 0", "functions: {f: 'os:system'}",
               "expect: {error: ''}", "grad_output: [1e400]", "1:", "true: x", "null: x"]


@st.composite
def mutated_files(draw):
    text = draw(st.sampled_from([GOOD_FILE, GOOD_SMALL]))
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["insert", "delete-line", "duplicate-line", "replace", "indent"]))
        at = draw(st.integers(0, len(lines) - 1))
        if action == "insert":
            col = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:col] + draw(st.sampled_from(YAML_PIECES)) + lines[at][col:]
        elif action == "delete-line" and len(lines) > 1:
            del lines[at]
        elif action == "duplicate-line":
            lines.insert(at, lines[at])
        elif action == "replace" and ":" in lines[at]:
            key = lines[at].split(":", 1)[0]
            lines[at] = f"{key}: {draw(st.sampled_from(YAML_PIECES))}"
        elif action == "indent":
            lines[at] = draw(st.sampled_from(["", " ", "   ", "\t"])) + lines[at].lstrip()
    return "\n".join(lines)


@FILE_SETTINGS
@given(mutated_files())
def test_mutated_case_files_load_or_fail_cleanly(tmp_path, text):
    load_cleanly(tmp_path, text)


FIELDS = ["name", "inputs", "forward", "torch", "sympy", "grad_output", "dtypes", "tolerance", "expect", "tags",
          "description", "functions", "backward", "timeout", "defaults", "cases", "value", "shape", "fill",
          "sample", "seed", "mean", "std", "low", "high", "requires_grad", "domain", "dtype", "x", "y",
          "float64", "float32", "rtol", "atol", "grad", "output", "grad_fn", "error", "repeat", "retain_graph",
          "accept", "non_finite"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                    st.sampled_from(["x", "x.sum()", "float64", "normal", "ones", "random", "exp(x)", "int64",
                                     "__import__('os')", "a.b", ""]),
                    st.text(max_size=20))
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.sampled_from(FIELDS), children, max_size=6)),
    max_leaves=40,
)


@FILE_SETTINGS
@given(st.one_of(DOCUMENTS, st.fixed_dictionaries({"cases": st.lists(
    st.dictionaries(st.sampled_from(FIELDS), DOCUMENTS, max_size=8), min_size=1, max_size=3)})))
def test_structured_random_documents_load_or_fail_cleanly(tmp_path, document):
    load_cleanly(tmp_path, yaml.safe_dump(document, allow_unicode=True))


@pytest.mark.parametrize("levels", [pytest.param(3, id="small"), pytest.param(9, id="billion-laughs")])
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path, levels):
    lines = ["cases:", "  - name: bomb", "    inputs:", "      a: &a [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]"]
    previous = "a"
    for name in string.ascii_lowercase[1:levels + 1]:
        lines.append(f"      {name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines.append("    forward: a.sum()")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with no_hang():
        result = load_file(path)
    if 9 ** (levels + 1) > 1_000_000:
        (err,) = result.errors
        assert "alias" in str(err) and "expands to over" in str(err)
    else:                  # a few aliases are fine: they are ordinary YAML
        assert not [e for e in result.errors if "alias" in str(e)]
