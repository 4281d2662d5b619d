"""Which device torch's side runs on: resolving ``device:`` / ``--device``, what is present, what it records.

A device is named as torch names it: ``cpu``, ``cuda`` (the first GPU,
reported as ``cuda:0``), ``cuda:N``, ``mps``, or ``auto`` (the first of
``cuda:0``, ``mps``, ``cpu`` that is present). Only torch's side moves to the
device (forward, ``backward(v)``, forward mode, double backward); the exact
side and the finite differences stay on the CPU (``docs/devices.md``).

:data:`FAKE_DEVICES` is the test hook: a name registered there resolves to a
device whose tensors live on the CPU but that goes through every device code
path (leaves built "on" it, results copied back, the cross-device column,
the environment record). Nothing registers one outside the tests.
"""

from __future__ import annotations

import platform
import re
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import torch

from ..errors import CaseError

#: What ``device:`` and ``--device`` accept (fake devices aside).
DEVICE_PATTERN = r"^(cpu|auto|mps|cuda(:[0-9]+)?)$"
_SPEC = re.compile(DEVICE_PATTERN)


@dataclass(frozen=True)
class Fake:
    """A test device: CPU tensors, reported as ``kind`` with these runtime ``flags`` (see :func:`flags`)."""

    kind: str = "fake"
    flags: Mapping[str, bool] = field(default_factory=dict)
    name: str = "fake device (CPU tensors, for tests)"


#: Test hook: name -> :class:`Fake`. Empty outside the tests.
FAKE_DEVICES: dict[str, Fake] = {}


@dataclass(frozen=True)
class Device:
    """A resolved device: ``name`` as the reports show it, ``tensor`` where tensors go, ``kind``."""

    name: str
    tensor: torch.device
    kind: str

    @property
    def is_cpu(self) -> bool:
        return self.name == "cpu"


CPU = Device("cpu", torch.device("cpu"), "cpu")


class DeviceUnavailable(CaseError):
    """The device asked for is not present on this machine (a case's run becomes a ``skip``)."""


def present() -> list[str]:
    """The devices this machine has, by name: ``cpu`` first, then each GPU, ``mps``, and any fake."""
    names = ["cpu"]
    if torch.cuda.is_available():       # no CUDA context is created by asking (the fork server stays clean)
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names + sorted(FAKE_DEVICES)


def valid_spec(spec: str) -> bool:
    """Whether ``spec`` is a device name at all (present or not)."""
    return bool(_SPEC.match(spec)) or spec.split(":")[0] in FAKE_DEVICES


def resolve(spec: str | None) -> Device:
    """The device ``spec`` names (None: the CPU); :class:`DeviceUnavailable` when it is not present."""
    if spec is None or spec == "cpu":
        return CPU
    spec = str(spec).strip()
    if not valid_spec(spec):
        raise CaseError(f"unknown device {spec!r}",
                        hint="Use cpu, cuda, cuda:N, mps or auto (the first present of cuda:0, mps, cpu).")
    have = present()
    if spec == "auto":
        spec = next((d for d in ("cuda:0", "mps") if d in have), "cpu")
        if spec == "cpu":
            return CPU
    base = spec.split(":")[0]
    if base in FAKE_DEVICES:
        return Device(spec, torch.device("cpu"), FAKE_DEVICES[base].kind)
    name = "cuda:0" if spec == "cuda" else spec
    if name not in have:
        raise DeviceUnavailable(f"device {spec!r} is not present on this machine (present: {', '.join(have)})",
                                hint="Run where that device is, or choose one of the present devices "
                                     "(--device auto picks the first present of cuda:0, mps, cpu).")
    return Device(name, torch.device(name), base)


def to_device(t: torch.Tensor, device: Device | None) -> torch.Tensor:
    """``t`` on ``device`` (unchanged on the CPU or without one)."""
    return t if device is None or device.tensor.type == "cpu" else t.to(device.tensor)


def flags(device: Device) -> dict[str, bool]:
    """The runtime switches that change how a device computes (TF32, reduced-precision reductions).

    Read when the case runs (a ``functions:`` module may have switched them);
    empty for the CPU and MPS, where none of them applies.
    """
    fake = _fake(device)
    if fake is not None:
        return dict(fake.flags)
    if device.kind != "cuda":
        return {}
    matmul = torch.backends.cuda.matmul
    with warnings.catch_warnings():       # allow_tf32 is read through newer precision settings in some versions
        warnings.simplefilter("ignore")
        return {
            "tf32_matmul": bool(matmul.allow_tf32),
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
            "fp16_reduced_precision_reduction": bool(getattr(matmul, "allow_fp16_reduced_precision_reduction", True)),
            "bf16_reduced_precision_reduction": bool(getattr(matmul, "allow_bf16_reduced_precision_reduction", True)),
        }


def describe(device: Device) -> dict[str, str]:
    """What ``environment.json`` records for a device: its name, capability and flags, as text."""
    out = {"device": device.name}
    if device.kind == "cuda" and device.tensor.type == "cuda":
        index = device.tensor.index or 0
        major, minor = torch.cuda.get_device_capability(index)
        out.update(device_name=torch.cuda.get_device_name(index), device_capability=f"{major}.{minor}",
                   cuda=str(torch.version.cuda), cudnn=str(torch.backends.cudnn.version()))
        out.update(_matmul_precision())
    elif _fake(device) is not None:
        out["device_name"] = _fake(device).name
    elif device.kind == "mps":
        out["device_name"] = "Apple MPS"
    else:
        out["device_name"] = platform.processor() or platform.machine() or "cpu"
    out.update({key: str(value) for key, value in flags(device).items()})
    return out


def _fake(device: Device) -> Fake | None:
    return FAKE_DEVICES.get(device.name.split(":")[0]) if device.tensor.type == "cpu" else None


def _matmul_precision() -> dict[str, str]:
    """torch's float32 matmul precision setting (``highest`` means no TF32), for the record."""
    try:
        return {"float32_matmul_precision": str(torch.get_float32_matmul_precision())}
    except Exception:  # an old torch without the setting
        return {}


class OpRecorder(torch.overrides.TorchFunctionMode):
    """Records the torch functions a forward calls, each with the largest dimension of its tensor arguments.

    The device allowances (:mod:`verifier.verdict.device_allowance`) apply
    only when an operation they concern ran (a matmul for TF32, ...).
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name:
            dims = [d for a in (*args, *kwargs.values()) for d in _shapes(a)]
            self.ops[name] = max([self.ops.get(name, 0), *dims])
        return func(*args, **kwargs)


def _shapes(arg) -> list[int]:
    """The dimensions of a tensor argument, or of the tensors in a list/tuple argument (einsum's operands)."""
    if isinstance(arg, torch.Tensor):
        return list(arg.shape)
    if isinstance(arg, (list, tuple)):
        return [d for a in arg if isinstance(a, torch.Tensor) for d in a.shape]
    return []
