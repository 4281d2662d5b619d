"""A planted wrong backward for tests: tanh whose gradient is 0.1 % off at one flat index."""

from __future__ import annotations

import torch

#: torch's own tanh, taken at import: a test may monkeypatch torch.tanh with wrong_tanh itself.
_TANH = torch.tanh


def wrong_tanh(x: torch.Tensor, flat_index: int) -> torch.Tensor:
    """torch.tanh(x), except that its backward scales element ``flat_index`` of the gradient by 1.001."""

    class WrongTanh(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return _TANH(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            grad = g * (1 - _TANH(x) ** 2)
            grad.view(-1)[flat_index] *= 1.001
            return grad

    return WrongTanh.apply(x)


def square_without_double_backward(x: torch.Tensor) -> torch.Tensor:
    """x², whose gradient (2x) is right but built from a detached x: its double backward is 0, not 2."""
    held = x.detach()
    # the value is x² exactly (x - held is 0); the gradient 2·held + 0·x keeps a graph whose own slope is 0
    return held * held + (2 * held + 0 * x) * (x - held)
