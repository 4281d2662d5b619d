"""Module-level torch and symbolic functions that misbehave, for tests/test_isolation.py.

They live in their own small module so that a worker process can unpickle
them (by reference) without importing the test module and pytest.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

import torch

HANG_SECONDS = 3600


def square_sum(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum()


def hang(x: torch.Tensor) -> torch.Tensor:
    """A torch side that never returns (within any test's patience)."""
    time.sleep(HANG_SECONDS)
    return x.sum()


def hang_in_float32(x: torch.Tensor) -> torch.Tensor:
    """Hangs only when run in float32, so the float64 run of the same case must still pass."""
    if x.dtype == torch.float32:
        time.sleep(HANG_SECONDS)
    return (x * x).sum()


def sleep_two_seconds(x: torch.Tensor) -> torch.Tensor:
    """Slow once per run: the autograd call sleeps, the finite differences (no grad) do not."""
    if x.requires_grad:
        time.sleep(2.0)
    return (x * x).sum()


def exit_hard(x: torch.Tensor) -> torch.Tensor:
    os._exit(3)


def segfault(x: torch.Tensor) -> torch.Tensor:
    ctypes.string_at(0)          # reads address 0: SIGSEGV
    return x.sum()


def raise_value_error(x: torch.Tensor) -> torch.Tensor:
    raise ValueError("planted failure in the torch side")


def system_exit(x: torch.Tensor) -> torch.Tensor:
    sys.exit("a custom function called sys.exit")


def symbolic_recursion(x):
    """A symbolic side that recurses without end (a blow-up SymPy can hit on deep expressions)."""
    return symbolic_recursion(x)


def symbolic_memory(x):
    raise MemoryError("planted: the symbolic side ran out of memory")


def symbolic_forever(x):
    while True:
        time.sleep(0.05)


def record_pid_then_hang(x: torch.Tensor) -> torch.Tensor:
    """Write this worker's pid to $VERIFIER_TEST_MARKER, then hang: lets a test kill a run mid-case."""
    Path(os.environ["VERIFIER_TEST_MARKER"]).write_text(str(os.getpid()))
    time.sleep(HANG_SECONDS)
    return x.sum()


def allocate_too_much(x: torch.Tensor) -> torch.Tensor:
    """Asks for 20 GB: a worker's memory limit must stop it."""
    return x.repeat(50000, 50000).sum()
