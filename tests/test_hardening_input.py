"""Input hygiene (issue 13, the "Weak" list): each test fails on the code before the fix.

Per-case load errors for bad keys, the report folder checked before any
work, stale report temporaries removed, bidi controls and non-ASCII letters
refused by name, numbers that a cast would change refused at load time,
``--no-functions`` and the list of imported modules, CSV cells that are not
formulas, and ``verifier new``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import verifier
from verifier.cases.loading import load_file
from verifier.cli import _not_loaded, main
from verifier.errors import CaseError, VerifierError
from verifier.report.csv_text import neutral, to_csv
from verifier.report.folder import check_report_dir, remove_stale_temporaries

ROOT = Path(__file__).resolve().parent.parent
GOOD = "    inputs: {x: [1.0, 2.0]}\n    forward: (x**2).sum()\n"


def _file(tmp_path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- a bad key refuses its case, not the file ------------------------------------------------------------

def test_bad_keys_refuse_only_their_case_and_name_it(tmp_path):
    path = _file(tmp_path, "cases:\n"
                 "  - name: good.one\n" + GOOD +
                 "  - name: dup.key\n    inputs: {x: [1.0]}\n    forward: x*2\n    forward: x*3\n"
                 "  - name: bool.key\n    inputs: {on: [1.0]}\n    forward: x\n"
                 "  - name: good.two\n" + GOOD)
    loaded = load_file(path)
    assert [c.name for c in loaded.cases] == ["good.one", "good.two"]
    messages = sorted(str(e) for e in loaded.errors)
    assert len(messages) == 2
    assert "case 'bool.key': a mapping key must be a name, not the bool True" in messages[0]
    assert f"{path}:8: case 'dup.key': duplicate key 'forward' (first at line 7)" in messages[1]


def test_a_bad_key_outside_the_cases_still_refuses_the_file(tmp_path):
    path = _file(tmp_path, "defaults:\n  dtypes: [float64]\n  dtypes: [float32]\ncases:\n  - name: a\n" + GOOD)
    loaded = load_file(path)
    assert not loaded.cases and len(loaded.errors) == 1
    assert "duplicate key 'dtypes'" in str(loaded.errors[0]) and loaded.errors[0].case is None


def test_the_count_of_what_did_not_load_separates_cases_from_files():
    errors = [CaseError("x", case="a"), CaseError("y", case="b"), CaseError("z", file="f.yaml")]
    assert _not_loaded(errors) == "2 case(s) did not load, 1 file(s) could not be read (none of their cases ran)"
    assert _not_loaded(errors[:1]) == "1 case(s) did not load"


# --- the report folder, checked before any work -------------------------------------------------------

def test_a_report_file_name_taken_by_a_folder_is_refused_before_any_case_runs(tmp_path, monkeypatch, capsys):
    reports = tmp_path / "r"
    (reports / "report.html").mkdir(parents=True)
    with pytest.raises(VerifierError, match="report.html' is a folder"):
        check_report_dir(reports)
    ran = []
    monkeypatch.setattr("verifier.run.isolation.IsolatedRunner.start", lambda self: ran.append(1) or self)
    path = _file(tmp_path, "cases:\n  - name: a\n" + GOOD)
    assert main(["run", str(path), "--report-dir", str(reports), "--jobs", "0", "--no-progress"]) == 2
    assert not ran and "is a folder" in capsys.readouterr().err


def test_a_dangling_symlink_as_the_report_folder_says_what_it_points_to(tmp_path):
    link = tmp_path / "r"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(VerifierError, match=r"symbolic link to '.*gone', which does not exist"):
        check_report_dir(link)
    (tmp_path / "f").write_text("")
    with pytest.raises(VerifierError, match="it is a file, not a folder"):
        check_report_dir(tmp_path / "f")


def test_temporaries_of_killed_runs_are_removed_and_a_live_runs_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".details.csv.{dead.pid}.ab12_x.tmp"
    live = tmp_path / f".details.csv.{os.getpid()}.cd34_y.tmp"
    old = tmp_path / ".summary.csv.k2j4h1.tmp"                # written before temporaries named their process
    recent = tmp_path / ".report.html.z9y8x7.tmp"
    unrelated = tmp_path / ".notes.txt.1.tmp"
    for p in (stale, live, old, recent, unrelated):
        p.write_text("partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([stale, old])
    assert live.exists() and recent.exists() and unrelated.exists()
    check_report_dir(tmp_path)                               # the run's own check cleans up too
    assert live.exists()


# --- characters that read differently from what runs ----------------------------------------------------

def test_a_bidi_control_anywhere_in_a_case_file_is_refused(tmp_path):
    path = _file(tmp_path, "cases:\n  - name: a\n    inputs: {x: [1.0]}\n"
                 "    forward: x * 2   # \u202e 3 * x :looks like\n")
    loaded = load_file(path)
    assert not loaded.cases
    assert "bidirectional control character (U+202E RIGHT-TO-LEFT OVERRIDE) at line 4" in str(loaded.errors[0])


@pytest.mark.parametrize("source, letter", [
    pytest.param("\u0445 * 2", "'\u0445' (U+0445 CYRILLIC SMALL LETTER HA) at column 1", id="cyrillic-x"),
    pytest.param("\uff58 * 2", "'\uff58' (U+FF58 FULLWIDTH LATIN SMALL LETTER X) at column 1", id="fullwidth-x"),
    pytest.param("x + einsum('\u00e9\u00e9', x)", "(U+00E9 LATIN SMALL LETTER E WITH ACUTE) at column 13",
                 id="in-a-string"),
    pytest.param("x * 2 # \u2067 evil", "bidirectional control character (U+2067", id="bidi-in-a-comment"),
])
def test_non_ascii_in_an_expression_is_named(source, letter):
    with pytest.raises(CaseError) as info:
        verifier.make_case("t", {"x": [1.0]}, forward=source)
    assert letter in str(info.value)
    assert "non-ASCII" in str(info.value) or "bidirectional" in str(info.value)


def test_non_ascii_in_an_expression_comment_is_allowed():
    case = verifier.make_case("t", {"x": [1.0]}, forward="(x * 2  # Jᵀv of 2x is 2v\n ).sum()")
    assert verifier.Runner(cache=False).run(case, "float64").status == "pass"


# --- numbers a cast would change ------------------------------------------------------------------------

@pytest.mark.parametrize("forward, dtype, words", [
    ("x * 1e999", "float64", "the constant 1e999 is not a finite number"),
    ("x * 10**400", "float64", "the constant 10**400 is not a finite number"),
    ("x * 2**9**9**9", "float64", "not a finite number"),
    ("x * 1e39", "float32", "the constant 1e39 overflows to infinity in float32"),
    ("x * 70000", "float16", "overflows to infinity in float16"),
])
def test_constants_out_of_range_are_refused_at_load_time(forward, dtype, words):
    with pytest.raises(CaseError, match=re.escape(words)):
        verifier.make_case("t", {"x": [1.0]}, forward=forward, dtypes=[dtype], grad_output="ones")


def test_constants_in_range_still_load():
    verifier.make_case("t", {"x": [1.0]}, forward="x * 1e38 + 2**60", dtypes=["float32"])
    verifier.make_case("t", {"x": [1.0]}, forward="x * 60000", dtypes=["float16"])


@pytest.mark.parametrize("spec, words", [
    ({"value": [1.9, 0], "dtype": "int64"}, "holds 1.9, which is not a whole number (a cast would silently make it 1)"),
    ({"value": [0.5, 1], "dtype": "bool"}, "is a bool mask but holds 0.5"),
    ({"value": [4294967297, 0], "dtype": "int32"}, "holds 4294967297, outside int32's range"),
    ({"shape": [2], "sample": "uniform", "dtype": "int64"}, "sampled values are not whole numbers"),
])
def test_index_and_mask_values_a_cast_would_change_are_refused(spec, words):
    with pytest.raises(CaseError, match=re.escape(words)):
        verifier.make_case("t", {"x": [1.0, 2.0], "i": spec}, forward="x[i]")


def test_exact_index_and_mask_values_still_load():
    case = verifier.make_case("t", {"x": [1.0, 2.0], "i": {"value": [1.0, 0], "dtype": "int32"}}, forward="x[i]")
    assert case.inputs[1].values().tolist() == [1, 0]
    verifier.make_case("t", {"x": [1.0, 2.0], "m": {"value": [1, 0], "dtype": "bool"}}, forward="x[m]")


@pytest.mark.parametrize("fields, words", [
    ({"inputs": {"x": [1e39, 1.0]}, "dtypes": ["float32"]}, "input 'x' holds the number 1e\\+39"),
    ({"inputs": {"x": {"shape": [2], "fill": 1e5}}, "dtypes": ["float16"]}, "overflows to infinity in float16"),
    ({"grad_output": [[1.0], [1.0, 2.0]]}, "grad_output is a ragged list"),
    ({"grad_output": [1e39, 1.0], "dtypes": ["float32"]}, "grad_output has the number 1e\\+39"),
])
def test_values_and_weights_that_overflow_or_are_ragged_are_refused(fields, words):
    inputs = fields.pop("inputs", {"x": [1.0, 2.0]})
    with pytest.raises(CaseError, match=words):
        verifier.make_case("t", inputs, forward="x * 2", **fields)


# --- code a case file loads ------------------------------------------------------------------------------

def _functions_case(tmp_path) -> Path:
    (tmp_path / "mymod_h5.py").write_text("def double(x):\n    return 2 * x\n")
    return _file(tmp_path, "cases:\n  - name: code.case\n    inputs: {x: [1.0, 2.0]}\n"
                 "    functions: {f: 'mymod_h5:double'}\n    torch: f(x).sum()\n    sympy: (2*x).sum()\n"
                 "  - name: plain.case\n" + GOOD)


def test_no_functions_refuses_every_case_that_loads_code(tmp_path, capsys):
    path = _functions_case(tmp_path)
    assert main(["validate", str(path), "--no-functions"]) == 2
    err = capsys.readouterr()
    assert "case 'code.case': the case imports code through 'functions:' (mymod_h5:double)" in err.err
    assert "1 valid case(s), 1 error(s)" in err.out
    assert "mymod_h5" not in sys.modules
    assert main(["validate", str(path)]) == 0


def test_a_run_says_which_modules_it_imports(tmp_path, capsys):
    path = _functions_case(tmp_path)
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r"), "--jobs", "0", "--no-progress"]) == 0
    assert "imports code: mymod_h5 (functions: of code.case)" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r"), "--jobs", "0", "--no-progress",
                 "-k", "plain"]) == 0
    assert "imports code" not in capsys.readouterr().err


# --- CSV cells that a spreadsheet would run -------------------------------------------------------------

def test_text_cells_that_start_a_formula_are_neutralised():
    for cell in ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"):
        assert neutral(cell) == "'" + cell
    for cell in ("-1.5", "1e-3", "pass", "(0, 1)", "", 3.0):
        assert neutral(cell) == cell
    df = pd.DataFrame({"case": ["a", "=1+1"], "value": [-1.0, 2.0]})
    assert to_csv(df).splitlines()[1:] == ["a,-1.0", "'=1+1,2.0"]


def test_a_formula_in_a_tag_reaches_the_report_as_text(tmp_path):
    from verifier.report.writing import write_reports
    case = verifier.make_case("t.case", {"x": [1.0, 2.0]}, forward="(x**2).sum()",
                              tags=['=HYPERLINK("http://evil.example","click")'])
    paths = write_reports([verifier.Runner(cache=False).run(case, "float64")], tmp_path / "r")
    summary = pd.read_csv(paths["summary"])
    assert summary["family"].iloc[0] == '\'=HYPERLINK("http://evil.example","click")'
    assert not any(line.startswith("=") or ",=" in line for line in paths["summary"].read_text().splitlines())


# --- verifier new --------------------------------------------------------------------------------------

def test_new_writes_into_the_current_directory_and_the_skeleton_validates_and_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "my.case"]) == 0
    written = tmp_path / "cases" / "my.case.yaml"
    assert written.is_file() and not (ROOT / "cases" / "my.case.yaml").exists()
    assert "verifier validate cases/my.case.yaml" in written.read_text()
    assert main(["validate", str(written)]) == 0
    assert main(["run", str(written), "--report-dir", "r", "--jobs", "0", "--no-progress"]) == 0
    assert main(["new", "my.case"]) == 2 and "exists" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../../x", "my case", ".hidden", "-rf", "a/b", "x" * 201, ""])
def test_new_refuses_names_that_are_not_case_names(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "--", name]) == 2
    assert "is not a case name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.yaml")) and not (tmp_path.parent.parent / "x.yaml").exists()
