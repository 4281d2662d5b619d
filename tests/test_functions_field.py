"""The `functions:` field: user callables (custom autograd Functions) on the torch side of a case."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pandas as pd
import pytest

from verifier import Runner, load_file

SOFTPLUS_MODULE = """
import torch

class Right(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log1p(torch.exp(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)

class Wrong(Right):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x) * 1.001
"""

CASES = """
defaults:
  dtypes: [float64, float32]
  inputs: {{x: [[0.5, -1.25, 2.0], [1.5, -2.5, 0.25]]}}
  grad_output: random
cases:
  - name: custom.right
    functions: {{softplus_fn: "{module}:Right.apply"}}
    torch: softplus_fn(x)
    sympy: log(1 + exp(x))
  - name: custom.wrong
    functions: {{softplus_fn: "{module}:Wrong.apply"}}
    torch: softplus_fn(x)
    sympy: log(1 + exp(x))
"""


@pytest.fixture
def module(tmp_path):
    """Write a uniquely named module into a folder; forget it from sys.modules afterwards."""
    written = []

    def write(text: str, folder: str = "cases") -> str:
        name = f"userops_{uuid.uuid4().hex[:8]}"
        path = tmp_path / folder / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        written.append(name)
        return name
    yield write
    for name in written:
        sys.modules.pop(name, None)


def _run(path):
    loaded = load_file(path)
    assert not loaded.errors, loaded.errors
    runner = Runner()
    return {(r.name, r.dtype): r for r in runner.run_all(loaded.cases)}


def test_a_custom_function_from_the_case_files_folder(cli, module, tmp_path):
    name = module(SOFTPLUS_MODULE)
    (tmp_path / "cases" / "custom.yaml").write_text(CASES.format(module=name), encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    # a fresh process whose working directory is not the case folder: the folder itself must be searched
    out = cli("run", tmp_path / "cases", "--report-dir", tmp_path / "rep", cwd=tmp_path / "elsewhere")
    assert out.returncode == 1, out.stderr
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv").set_index(["case", "dtype"])["status"]
    assert summary.to_dict() == {("custom.right", "float64"): "pass", ("custom.right", "float32"): "pass",
                                 ("custom.wrong", "float64"): "fail", ("custom.wrong", "float32"): "fail"}
    details = pd.read_csv(tmp_path / "rep" / "details.csv")
    wrong = details[details["case"] == "custom.wrong"]
    assert (~wrong["ok"]).all() and wrong["rel_err"].between(0.9e-3, 1.1e-3).all()


@pytest.mark.parametrize("cls, status", [pytest.param("Right", "pass", id="right"),
                                         pytest.param("Wrong", "fail", id="wrong")])
def test_a_functions_name_may_stand_for_a_supported_function(module, write_case, cls, status):
    # torch runs the user's softplus; the symbolic side keeps softplus's mathematical definition
    name = module(SOFTPLUS_MODULE, folder=".")
    path = write_case(f"""
        cases:
          - name: shadow.softplus
            functions: {{softplus: "{name}:{cls}.apply"}}
            inputs: {{x: [0.5, -1.25, 2.0]}}
            forward: softplus(x)
            grad_output: ones
        """)
    result = _run(path)[("shadow.softplus", "float64")]
    assert result.status == status, result.message
    assert result.grad_fn == f"{cls}Backward"


def test_a_function_from_the_environment(write_case):
    path = write_case("""
        cases:
          - name: env.softplus
            functions: {sp: "torch.nn.functional:softplus"}
            inputs: {x: [0.5, -1.25, 2.0]}
            torch: sp(x).sum()
            sympy: log(1 + exp(x)).sum()
        """)
    assert _run(path)[("env.softplus", "float64")].status == "pass"


@pytest.mark.parametrize("body, target, message", [
    pytest.param("", "nosuch_module_xyz:f", "ModuleNotFoundError: No module named 'nosuch_module_xyz'",
                 id="no-module"),
    pytest.param("def g(x):\n    return x\n", "{m}:f", "has no attribute 'f'", id="no-attribute"),
    pytest.param("raise RuntimeError('import failed on purpose')\n", "{m}:f",
                 "RuntimeError: import failed on purpose", id="import-raises"),
    pytest.param("def f(x:\n", "{m}:f", "SyntaxError", id="syntax-error"),
    pytest.param("f = 3\n", "{m}:f", "is a int, not a callable", id="not-callable"),
])
def test_load_problems_are_one_line_errors_and_the_rest_runs(module, write_case, body, target, message):
    name = module(body, folder=".")
    path = write_case(f"""
        cases:
          - name: load.broken
            functions: {{f: "{target.format(m=name)}"}}
            inputs: {{x: [1.0, 2.0]}}
            torch: f(x).sum()
            sympy: x.sum()
          - name: load.fine
            inputs: {{x: [1.0, 2.0]}}
            forward: (x**2).sum()
        """)
    results = _run(path)
    broken = results[("load.broken", "float64")]
    assert broken.status == "error"
    assert "cannot load function 'f'" in broken.message or "function 'f'" in broken.message
    assert message in broken.message and "\n" not in broken.message
    assert results[("load.fine", "float64")].status == "pass"


def test_the_symbolic_side_never_reads_a_functions_name(write_case):
    path = write_case("""
        cases:
          - name: needs.sympy
            functions: {mine: "torch.nn.functional:softplus"}
            inputs: {x: [1.0, 2.0]}
            forward: mine(x).sum()
        """)
    loaded = load_file(path)
    assert not loaded.cases
    (err,) = loaded.errors
    assert "'mine' comes from 'functions:', which only the torch side uses" in str(err)
    assert "case 'needs.sympy'" in str(err) and "sympy: ..." in str(err)


def test_forward_may_be_the_symbolic_side_of_a_torch_override(write_case):
    path = write_case("""
        cases:
          - name: torch.override
            functions: {mine: "torch.nn.functional:softplus"}
            inputs: {x: [1.0, 2.0]}
            torch: mine(x).sum()
            forward: log(1 + exp(x)).sum()
        """)
    assert _run(path)[("torch.override", "float64")].status == "pass"


def test_code_is_imported_only_when_a_case_runs(cli, module, tmp_path):
    marker = tmp_path / "imported.txt"
    name = module(f"from pathlib import Path\nPath({str(marker)!r}).write_text('yes')\n"
                  "def f(x):\n    return x * 2\n")
    case_file = tmp_path / "cases" / "c.yaml"
    case_file.write_text(f"""cases:
  - name: marker.case
    functions: {{f: "{name}:f"}}
    inputs: {{x: [1.0, 2.0]}}
    torch: f(x).sum()
    sympy: (2 * x).sum()
""", encoding="utf-8")
    for command in ("validate", "list"):
        out = cli(command, case_file)
        assert out.returncode == 0, out.stderr
        assert not marker.exists(), f"`verifier {command}` imported the case's module"
    out = cli("run", case_file, "--report-dir", tmp_path / "rep")
    assert out.returncode == 0, out.stdout + out.stderr
    assert marker.read_text() == "yes"


def test_two_folders_with_the_same_module_name_are_refused(tmp_path, write_case):
    name = f"clash_{uuid.uuid4().hex[:8]}"
    try:
        for folder, factor in (("a", 2), ("b", 3)):
            (tmp_path / folder).mkdir()
            (tmp_path / folder / f"{name}.py").write_text(f"def f(x):\n    return {factor} * x\n")
            write_case(f"""
                cases:
                  - name: clash.{folder}
                    functions: {{f: "{name}:f"}}
                    inputs: {{x: [1.0, 2.0]}}
                    torch: f(x).sum()
                    sympy: ({factor} * x).sum()
                """, name=f"{folder}/case.yaml")
        assert _run(tmp_path / "a" / "case.yaml")[("clash.a", "float64")].status == "pass"
        second = _run(tmp_path / "b" / "case.yaml")[("clash.b", "float64")]
        assert second.status == "error"
        assert f"module '{name}' is already imported from" in second.message
        assert "unique name" in second.message
    finally:
        sys.modules.pop(name, None)
