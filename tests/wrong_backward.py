"""Planted wrong backwards for tests: tanh whose gradient (or whose double backward) is off at one flat index."""

from __future__ import annotations

import torch

#: torch's own tanh, taken at import: a test may monkeypatch torch.tanh with wrong_tanh itself.
_TANH = torch.tanh


def _tanh_with(backward):
    """tanh as a custom Function whose backward is ``backward(x, g)``."""

    class PlantedTanh(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return _TANH(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return backward(x, g)

    return PlantedTanh.apply


def wrong_tanh(x: torch.Tensor, flat_index: int) -> torch.Tensor:
    """torch.tanh(x), except that its backward scales element ``flat_index`` of the gradient by 1.001."""

    def backward(x, g):
        grad = g * (1 - _TANH(x) ** 2)
        grad.view(-1)[flat_index] *= 1.001
        return grad

    return _tanh_with(backward)(x)


def tanh_with_wrong_second(scale: float, flat_index: int):
    """tanh whose backward is right but whose derivative (the double backward) is off by ``scale`` at one element."""

    def backward(x, g):
        d = 1 - _TANH(x) ** 2
        bump = torch.zeros_like(x)
        bump.view(-1)[flat_index] = scale - 1
        # (x - x.detach()) is 0: the value is g·d exactly; its derivative in x gains bump·g·d at one element
        return g * (d + (x - x.detach()) * d.detach() * bump)

    return _tanh_with(backward)


def square_without_double_backward(x: torch.Tensor) -> torch.Tensor:
    """x², whose gradient (2x) is right but built from a detached x: its double backward is 0, not 2."""
    held = x.detach()
    # the value is x² exactly (x - held is 0); the gradient 2·held + 0·x keeps a graph whose own slope is 0
    return held * held + (2 * held + 0 * x) * (x - held)
