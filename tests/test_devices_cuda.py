"""Devices on a real GPU: skipped, with the reason, where torch sees no CUDA device."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from wrong_backward import wrong_tanh

from verifier import GradientMismatch, assert_gradients
from verifier.cases.registry import make_case
from verifier.report.writing import write_reports
from verifier.run.runner import Runner
from verifier.torch_side import autograd as autograd_module
from verifier.torch_side import device as device_module

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)")

TANH = {"x": {"shape": [2, 3], "sample": "normal"}}


def _case(torch_fn=None, device="cuda"):
    if torch_fn is None:
        case = make_case("cuda.tanh", TANH, forward="torch.tanh(x)", grad_output="random")
    else:
        case = make_case("cuda.tanh", TANH, torch=torch_fn, sympy="tanh(x)", grad_output="random")
    return dataclasses.replace(case, device=device)


def test_leaves_are_built_on_the_gpu(monkeypatch):
    seen = []
    real = autograd_module.make_leaves

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.extend(t.device.type for t in out)
        return out
    monkeypatch.setattr(autograd_module, "make_leaves", spy)
    result = Runner(cache=False).run(_case(), "float32")
    assert result.status == "pass", result.message
    assert result.device == "cuda:0" and "cuda" in seen
    assert result.cross_device_max_abs_err >= 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_planted_wrong_backward_on_the_gpu_is_caught_and_its_twin_passes(dtype):
    assert Runner(cache=False).run(_case(lambda x: torch.tanh(x)), dtype).status == "pass"
    wrong = Runner(cache=False).run(_case(lambda x: wrong_tanh(x, 4)), dtype)
    assert wrong.status == "fail" and "x(1, 1)" in wrong.message


def test_auto_picks_the_gpu():
    assert device_module.resolve("auto").name == "cuda:0"


def test_assert_gradients_checks_a_cuda_tensor_on_cuda():
    x = torch.tensor([0.5, -1.0, 2.0], device="cuda")
    out = assert_gradients(torch.tanh, None, {"x": x}, grad_output="ones")
    assert out.summary["device"].tolist() == ["cuda:0"]
    with pytest.raises(GradientMismatch):
        assert_gradients(lambda t: wrong_tanh(t, 1), None, {"x": x}, grad_output="ones")


def test_environment_json_records_the_gpu(tmp_path):
    write_reports([Runner(cache=False).run(_case(), "float32")], tmp_path)
    env = json.loads((tmp_path / "environment.json").read_text())
    assert env["device"] == "cuda:0" and env["device_name"] == torch.cuda.get_device_name(0)
    assert env["device_capability"] == ".".join(map(str, torch.cuda.get_device_capability(0)))
    assert env["tf32_matmul"] == str(torch.backends.cuda.matmul.allow_tf32)
