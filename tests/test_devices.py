"""Devices on a machine without a GPU: `device: cpu`, an absent device, and a fake device that takes every device path.

The fake device (``torch_side.device.FAKE_DEVICES``) keeps its tensors on the
CPU but is not the CPU to the runner: leaves are built through the device
path, results come back through it, the CPU autograd runs beside it for the
cross-device column, and ``environment.json`` records it. A registered fake
of kind ``cuda`` with TF32 switched on exercises the device allowances.
Tests that need a real GPU are in ``tests/test_devices_cuda.py``.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from corpus.tensors import MatMul
from wrong_backward import wrong_tanh

from verifier import CaseError, GradientMismatch, assert_gradients
from verifier.cases.loading import load_paths
from verifier.cases.registry import make_case
from verifier.report.writing import write_reports
from verifier.run import on_device
from verifier.run.runner import Runner
from verifier.torch_side import autograd as autograd_module
from verifier.torch_side import device as device_module

pytest_plugins = ["pytester"]

TANH = {"x": {"shape": [2, 3], "sample": "normal"}}
# the body of a small case in a YAML file, indented as write_case dedents it
SQUARE = """        inputs: {x: [1.0, 2.0]}
            forward: (x**2).sum()"""


@pytest.fixture
def fake(monkeypatch):
    """Register 'fake' (and 'fakecuda': kind cuda, TF32 on) and count the tensors moved through the device path."""
    monkeypatch.setitem(device_module.FAKE_DEVICES, "fake", device_module.Fake())
    monkeypatch.setitem(device_module.FAKE_DEVICES, "fakecuda", device_module.Fake(
        kind="cuda", flags={"tf32_matmul": True, "tf32_cudnn": True, "fp16_reduced_precision_reduction": True}))
    moved = []
    real = device_module.to_device

    def spy(t, device):
        if device is not None and not device.is_cpu:
            moved.append(device.name)
        return real(t, device)
    monkeypatch.setattr(autograd_module, "to_device", spy)
    return moved


def _on(case, device):
    """``case`` on ``device``; a fake device is no name the schema accepts, so it is set after loading."""
    return case if device is None else dataclasses.replace(case, device=device)


def _tanh_case(torch_fn=None, device=None, **fields):
    if torch_fn is None:
        case = make_case("dev.tanh", TANH, forward="torch.tanh(x)", grad_output="random", **fields)
    else:
        case = make_case("dev.tanh", TANH, torch=torch_fn, sympy="tanh(x)", grad_output="random", **fields)
    return _on(case, device)


def test_device_cpu_runs_as_before():
    plain = Runner(cache=False).run(_tanh_case(), "float64")
    on_cpu = Runner(cache=False).run(_tanh_case(device="cpu"), "float64")
    assert plain.status == on_cpu.status == "pass"
    assert on_cpu.device == "cpu" and on_cpu.device_info is None and on_cpu.allowance == ""
    assert "cross_device_abs_err" not in on_cpu.rows        # no second run on the CPU itself
    np.testing.assert_array_equal(on_cpu.rows["autograd"], plain.rows["autograd"])
    assert not any("on the CPU" in n for n in on_cpu.fd.notes)


def test_a_wrong_backward_with_device_cpu_is_caught():
    result = Runner(cache=False).run(_tanh_case(lambda x: wrong_tanh(x, 4), device="cpu"), "float64")
    assert result.status == "fail" and "x(1, 1)" in result.message


def test_an_absent_device_is_a_skip_row_that_says_what_is_present():
    result = Runner(cache=False).run(_tanh_case(device="cuda:99"), "float64")
    assert result.status == "skip"
    assert "'cuda:99' is not present on this machine" in result.message and "present: cpu" in result.message
    assert result.device == "cuda:99"


def test_the_run_device_applies_to_cases_without_their_own(fake):
    assert Runner(cache=False, device="fake").run(_tanh_case(), "float64").device == "fake"
    assert Runner(cache=False, device="fake").run(_tanh_case(device="cpu"), "float64").device == "cpu"


def test_an_unknown_device_is_refused_when_the_case_loads(write_case):
    with pytest.raises(CaseError, match="device"):
        make_case("dev.tanh", TANH, forward="torch.tanh(x)", device="tpu")
    path = write_case("""
        cases:
          - name: dev.bad
            device: gpu0
    """ + SQUARE + """
          - name: dev.good
            device: cuda:3
    """ + SQUARE)
    loaded = load_paths([path])
    assert [c.name for c in loaded.cases] == ["dev.good"] and loaded.cases[0].device == "cuda:3"
    assert len(loaded.errors) == 1 and "dev.bad" in str(loaded.errors[0]) and "device" in str(loaded.errors[0])


def test_the_fake_device_goes_through_every_device_path(fake):
    result = Runner(cache=False).run(_tanh_case(device="fake"), "float64")
    assert result.status == "pass", result.message
    # leaves built on the device by the backward, forward-mode and double-backward runs; the CPU run adds none
    assert fake.count("fake") == 3
    assert result.forward_mode.status == "pass" and result.second_order.status == "pass"
    assert result.device == "fake" and result.device_info["device_name"].startswith("fake device")
    rows = result.rows
    assert (rows["device"] == "fake").all() and (rows["allowance"] == "").all()
    assert rows["cross_device_abs_err"].tolist() == [0.0] * 6 and result.cross_device_max_abs_err == 0.0
    assert result.fd.notes[0] == "finite differences in float64 on the CPU; torch's autograd on fake"


def test_a_planted_wrong_backward_on_the_device_route_is_caught_and_its_twin_passes(fake):
    runner = Runner(cache=False)
    right = runner.run(_tanh_case(lambda x: torch.tanh(x), device="fake"), "float32")
    wrong = Runner(cache=False).run(_tanh_case(lambda x: wrong_tanh(x, 4), device="fake"), "float32")
    assert right.status == "pass", right.message
    assert wrong.status == "fail" and "x(1, 1)" in wrong.message
    bad = wrong.rows[~wrong.rows["ok"]]
    assert bad["index"].tolist() == ["(1, 1)"] and bad["attribution"].tolist() == ["autograd_wrong"]


def test_the_cross_device_column_reports_a_difference_without_changing_the_verdict(fake, monkeypatch):
    real = on_device.run_autograd

    def doubled_on_the_cpu(*args, **kwargs):
        out = real(*args, **kwargs)
        out.grads = {k: 2 * v for k, v in out.grads.items()}
        return out
    monkeypatch.setattr(on_device, "run_autograd", doubled_on_the_cpu)
    result = Runner(cache=False).run(_tanh_case(device="fake"), "float64")
    assert result.status == "pass"                     # the verdict is device autograd against exact
    rows = result.rows
    np.testing.assert_allclose(rows["cross_device_abs_err"], np.abs(rows["autograd"]), rtol=1e-15)
    assert result.cross_device_max_abs_err == pytest.approx(float(np.abs(rows["autograd"]).max()))


def test_the_cpu_side_of_the_cross_device_column_may_fail_alone(fake, monkeypatch):
    def raises(*args, **kwargs):
        return autograd_module.AutogradResult(error=RuntimeError("no CPU kernel"), error_stage="forward")
    monkeypatch.setattr(on_device, "run_autograd", raises)
    result = Runner(cache=False).run(_tanh_case(device="fake"), "float64")
    assert result.status == "pass" and np.isnan(result.rows["cross_device_abs_err"]).all()
    assert "cross-device: torch on the CPU raised in forward: RuntimeError: no CPU kernel" in result.message


def test_fd_device_is_said_in_fd_note(fake):
    case = dataclasses.replace(_tanh_case(device="fake"), fd_device="fake")
    result = Runner(cache=False).run(case, "float64")
    assert result.status == "pass"
    assert result.fd.notes[0].startswith("finite differences in float64 on fake (--fd-device)")


MATMUL = {"x": {"shape": [3, 8], "sample": "uniform", "low": 0.5, "high": 1.5},
          "w": {"shape": [8, 2], "sample": "uniform", "low": 0.5, "high": 1.5, "seed": 1}}


def _scaled_matmul(scale):
    """x @ w; with ``scale`` a custom Function whose gradient of x is ``scale`` times the right one."""
    if scale is None:
        return lambda x, w: x @ w

    class Scaled(MatMul):
        @staticmethod
        def backward(ctx, g):
            gx, gw = MatMul.backward(ctx, g)
            return scale * gx, gw
    return Scaled.apply


def _matmul_case(scale=None, device="fakecuda"):
    return _on(make_case("dev.matmul", MATMUL, torch=_scaled_matmul(scale), sympy="x @ w", grad_output="ones",
                         dtypes=["float32", "float64"]), device)


def test_tf32_allowance_applies_only_on_cuda_in_float32_with_a_matmul(fake):
    result = Runner(cache=False).run(_matmul_case(), "float32")
    assert result.status == "pass" and result.allowance == "tf32_matmul"
    assert "device allowance: tf32_matmul (rtol 0.01" in result.message
    assert (result.rows["allowance"] == "tf32_matmul").all()
    assert Runner(cache=False).run(_matmul_case(), "float64").allowance == ""          # TF32 is float32 only
    assert Runner(cache=False).run(_matmul_case(device="fake"), "float32").allowance == ""   # not a CUDA kind
    tanh = Runner(cache=False).run(_tanh_case(device="fakecuda"), "float32")
    assert tanh.allowance == ""                                                           # no matmul ran


def test_a_wrong_matmul_backward_is_caught_under_the_tf32_allowance(fake):
    wrong = Runner(cache=False).run(_matmul_case(scale=1.2), "float32")
    assert wrong.allowance == "tf32_matmul" and wrong.status == "fail"
    assert "device allowance: tf32_matmul" in wrong.message
    assert set(wrong.rows.loc[~wrong.rows["ok"], "input"]) == {"x"}
    # without the allowance (float64, or the CPU) a 0.1 % error is caught as before
    for device, dtype in (("fakecuda", "float64"), ("fake", "float32"), ("cpu", "float32")):
        result = Runner(cache=False).run(_matmul_case(scale=1.001, device=device), dtype)
        assert result.status == "fail" and result.allowance == "", (device, dtype)


def test_environment_json_records_the_device_and_its_flags(fake, tmp_path):
    results = [Runner(cache=False).run(_matmul_case(), "float32"), Runner(cache=False).run(_tanh_case(), "float64")]
    write_reports(results, tmp_path)
    env = json.loads((tmp_path / "environment.json").read_text())
    assert env["device"] == "fakecuda, cpu"
    assert env["device_name"].startswith("fake device") and env["tf32_matmul"] == "True"
    assert env["device_allowances"] == "tf32_matmul"
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["device"].tolist() == ["fakecuda", "cpu"]
    assert summary["allowance"].fillna("").tolist() == ["tf32_matmul", ""]
    assert summary.loc[0, "cross_device_max_abs_err"] >= 0 and np.isnan(summary.loc[1, "cross_device_max_abs_err"])


def test_a_cpu_run_records_device_cpu(tmp_path):
    write_reports([Runner(cache=False).run(_tanh_case(), "float64")], tmp_path)
    env = json.loads((tmp_path / "environment.json").read_text())
    assert env["device"] == "cpu" and "device_allowances" not in env


def test_auto_is_the_cpu_here_and_the_present_list_names_it():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: auto resolves to it (tests/test_devices_cuda.py)")
    assert device_module.resolve("auto") is device_module.CPU
    assert device_module.present()[0] == "cpu"


def test_assert_gradients_runs_where_the_tensors_are_and_keeps_dtype_on_request():
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float32)
    out = assert_gradients(torch.tanh, None, {"x": x}, grad_output="ones", dtypes="input")
    assert out.summary["dtype"].tolist() == ["float32"] and out.summary["device"].tolist() == ["cpu"]
    with pytest.raises(GradientMismatch):
        assert_gradients(lambda t: wrong_tanh(t, 1), None, {"x": x}, grad_output="ones", dtypes="input")


def test_assert_gradients_refuses_tensors_on_different_devices():
    with pytest.raises(CaseError, match="different devices"):
        assert_gradients(lambda a, b: a * b, None, {"a": torch.ones(2), "b": torch.ones(2, device="meta")})


def test_verifier_run_device_option(cli, write_case, tmp_path):
    path = write_case("""
        cases:
          - name: dev.square
    """ + SQUARE + """
          - name: dev.elsewhere
            device: cuda:99
    """ + SQUARE)
    out = cli("run", path, "--device", "cpu", "--report-dir", tmp_path / "rep", "--no-progress")
    assert out.returncode == 0, out.stderr
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert summary["status"].tolist() == ["pass", "skip"]
    assert "'cuda:99' is not present" in summary.loc[1, "message"]
    absent = cli("run", path, "--device", "cuda:99", "--report-dir", tmp_path / "rep2")
    assert absent.returncode == 2 and "--device: device 'cuda:99' is not present" in absent.stderr
    assert "present: cpu" in absent.stderr
    unknown = cli("run", path, "--device", "tpu", "--report-dir", tmp_path / "rep2")
    assert unknown.returncode == 2 and "unknown device 'tpu'" in unknown.stderr


def test_pytest_plugin_device_option(pytester):
    pytester.makefile(".yaml", dev=textwrap.dedent("""
        cases:
          - name: dev.square
    """ + SQUARE + """
          - name: dev.elsewhere
            device: cuda:99
    """ + SQUARE))
    result = pytester.runpytest("--verifier-device", "cpu", "--verifier-report", "rep")
    result.assert_outcomes(passed=1, skipped=1)
    assert pd.read_csv(pytester.path / "rep" / "summary.csv")["device"].tolist() == ["cpu", "cuda:99"]
    absent = pytester.runpytest("--verifier-device", "cuda:99")
    assert absent.ret == pytest.ExitCode.USAGE_ERROR
    absent.stderr.fnmatch_lines(["*--verifier-device: device 'cuda:99' is not present*present: cpu*"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would measure it")
def test_the_device_benchmark_exits_cleanly_without_a_gpu():
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "device_check.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "nothing to measure here: device 'cuda' is not present on this machine" in out.stdout


def test_a_complex_case_on_another_device_is_skipped_never_checked_on_the_cpu(fake):
    """The complex route builds CPU tensors: on a device it must say so (skip), not pass a CPU check as the device's."""
    z = make_case("dev.complex", {"z": {"value": ["1+2j", "-0.5+0.25j"]}}, forward="(z.abs()**2).sum()",
                  dtypes=["complex128"])
    on_fake = Runner(cache=False).run(_on(z, "fake"), "complex128")
    assert on_fake.status == "skip" and "CPU only" in on_fake.message
    assert Runner(cache=False).run(z, "complex128").status == "pass"
