"""Planted bugs in functions of several inputs, matrices, reductions and index arithmetic.

Square shapes are used where a bug (a transpose, a sum over the wrong dim)
would otherwise be caught by torch's own shape check: the verifier has to
find it from the values.
"""

from __future__ import annotations

import torch
from torch.autograd import Function

from .registry import Planted, plant


def normal(shape, seed):
    return {"shape": list(shape), "sample": "normal", "seed": seed}


# --- a transposed matrix --------------------------------------------------------

class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g @ b.T, a.T @ g


class MatMulLeftUntransposed(MatMul):
    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g @ b, a.T @ g                  # BUG: g @ b instead of g @ b.T (shapes agree for square b)


class MatMulRightUntransposed(MatMul):
    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g @ b.T, a @ g                  # BUG: a @ g instead of a.T @ g


SQUARE = {"a": normal((3, 3), 1), "b": normal((3, 3), 2)}
plant(Planted("matmul-left-transpose", "transpose", "grad of a is g @ b, not g @ b^T", MatMul,
              MatMulLeftUntransposed, SQUARE, "a @ b"))
plant(Planted("matmul-right-transpose", "transpose", "grad of b is a @ g, not a^T @ g", MatMul,
              MatMulRightUntransposed, SQUARE, "a @ b"))


class MatVec(Function):
    @staticmethod
    def forward(ctx, m, v):
        ctx.save_for_backward(m, v)
        return m @ v

    @staticmethod
    def backward(ctx, g):
        m, v = ctx.saved_tensors
        return torch.outer(g, v), m.T @ g


class MatVecTransposed(MatVec):
    @staticmethod
    def backward(ctx, g):
        m, v = ctx.saved_tensors
        return torch.outer(v, g), m.T @ g      # BUG: outer(v, g) is the transpose of the matrix's gradient


plant(Planted("matvec-outer-transpose", "transpose", "grad of the matrix is outer(v, g)^T", MatVec,
              MatVecTransposed, {"m": normal((3, 3), 3), "v": normal((3,), 4)}, "m @ v"))


class Linear(Function):
    """x @ w^T, the layout of torch.nn.Linear's weight."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w.T

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, g.T @ x


class LinearWeightTransposed(Linear):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, x.T @ g                  # BUG: the x @ w layout's weight gradient, transposed here


plant(Planted("linear-weight-transpose", "transpose", "weight gradient x^T g for a weight used as w^T", Linear,
              LinearWeightTransposed, {"x": normal((3, 3), 5), "w": normal((3, 3), 6)}, "x @ w.T"))


# --- a wrong broadcast reduction ------------------------------------------------------

class AddBias(Function):
    """x (rows × features) + b (features), b broadcast over the rows."""

    @staticmethod
    def forward(ctx, x, b):
        return x + b

    @staticmethod
    def backward(ctx, g):
        return g, g.sum(dim=0)


class AddBiasWrongDim(AddBias):
    @staticmethod
    def backward(ctx, g):
        return g, g.sum(dim=1)                 # BUG: summed over the features instead of the rows


plant(Planted("bias-sum-wrong-dim", "reduction-dim", "bias gradient summed over dim 1 instead of 0", AddBias,
              AddBiasWrongDim, {"x": normal((3, 3), 7), "b": normal((3,), 8)}, "x + b"))


class ScaleRows(Function):
    """x (3 × 3) * s (3 × 1): one scale per row."""

    @staticmethod
    def forward(ctx, x, s):
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * s, (g * x).sum(dim=1, keepdim=True)


class ScaleRowsWrongDim(ScaleRows):
    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * s, (g * x).sum(dim=0).reshape(3, 1)   # BUG: reduced the columns, reshaped to fit


plant(Planted("row-scale-wrong-dim", "reduction-dim", "row scale gradient reduced over dim 0", ScaleRows,
              ScaleRowsWrongDim, {"x": normal((3, 3), 9), "s": normal((3, 1), 10)}, "x * s"))


class CenterRows(Function):
    """x - mean over each row."""

    @staticmethod
    def forward(ctx, x):
        return x - x.mean(dim=1, keepdim=True)

    @staticmethod
    def backward(ctx, g):
        return g - g.mean(dim=1, keepdim=True)


class CenterRowsWrongDim(CenterRows):
    @staticmethod
    def backward(ctx, g):
        return g - g.mean(dim=0, keepdim=True)  # BUG: the mean of g taken down the columns


plant(Planted("center-rows-wrong-dim", "reduction-dim", "centering's backward averages over the wrong dim",
              CenterRows, CenterRowsWrongDim, {"x": normal((3, 3), 11)}, "x - x.mean(dim=1, keepdim=True)"))


# --- missing terms in vector functions ------------------------------------------------------

class Softmax(Function):
    @staticmethod
    def forward(ctx, x):
        s = torch.softmax(x, dim=0)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return s * (g - (g * s).sum())


class SoftmaxDiagonalOnly(Softmax):
    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return s * g                           # BUG: kept the diagonal s_i of the Jacobian, lost -s_i s_j


plant(Planted("softmax-missing-term", "product-rule", "softmax backward without the -s (g·s) term", Softmax,
              SoftmaxDiagonalOnly, {"x": normal((5,), 12)}, "softmax(x, dim=0)"))


class Normalize(Function):
    """x / ||x||."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / torch.linalg.vector_norm(x)

    @staticmethod
    def backward(ctx, g):
        # recomputed from x (not saved from forward), so double backward differentiates it too
        (x,) = ctx.saved_tensors
        n = torch.linalg.vector_norm(x)
        y = x / n
        return (g - y * (y * g).sum()) / n


class NormalizeConstantNorm(Normalize):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / torch.linalg.vector_norm(x)  # BUG: treated ||x|| as a constant


plant(Planted("normalize-missing-term", "product-rule", "d(x/||x||) with ||x|| held constant", Normalize,
              NormalizeConstantNorm, {"x": normal((4,), 13)}, "x / sqrt((x**2).sum())"))


# --- a gradient returned for the wrong input ----------------------------------------------

class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g * a


class MulSwapped(Mul):
    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * a, g * b                    # BUG: each input gets the other's gradient


plant(Planted("mul-swapped", "swapped-inputs", "a*b returns (g a, g b)", Mul, MulSwapped,
              {"a": normal((4,), 14), "b": normal((4,), 15)}, "a * b"))


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g / b, -g * a / (b * b)


class DivSwapped(Div):
    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return -g * a / (b * b), g / b         # BUG: returned in (b, a) order


plant(Planted("div-swapped", "swapped-inputs", "a/b returns its gradients in the order (b, a)", Div, DivSwapped,
              {"a": [0.5, -1.2, 2.0], "b": [1.5, 0.8, -2.5]}, "a / b"))


class Atan2(Function):
    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return torch.atan2(y, x)

    @staticmethod
    def backward(ctx, g):
        y, x = ctx.saved_tensors
        r2 = x * x + y * y
        return g * x / r2, -g * y / r2


class Atan2Swapped(Atan2):
    @staticmethod
    def backward(ctx, g):
        y, x = ctx.saved_tensors
        r2 = x * x + y * y
        return -g * y / r2, g * x / r2         # BUG: (x, y) convention of another library


plant(Planted("atan2-swapped", "swapped-inputs", "atan2(y, x) with the gradients of (x, y)", Atan2, Atan2Swapped,
              {"y": [0.3, -0.8, 1.5], "x": [1.2, 0.5, -0.7]}, "atan2(y, x)"))


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, -g


class SubNoMinus(Sub):
    @staticmethod
    def backward(ctx, g):
        return g, g                            # BUG: copied from Add


plant(Planted("sub-sign", "sign", "a - b with d/db = +1 (Add's backward)", Sub, SubNoMinus,
              {"a": normal((4,), 16), "b": normal((4,), 17)}, "a - b"))


# --- a single wrong element ----------------------------------------------------------------

class PairSum(Function):
    """y[i] = x[i] + x[i+1]: the gradient of x[i] collects g[i] and g[i-1]."""

    @staticmethod
    def forward(ctx, x):
        return x[:-1] + x[1:]

    @staticmethod
    def backward(ctx, g):
        grad = torch.zeros(g.shape[0] + 1, dtype=g.dtype)
        grad[:-1] += g
        grad[1:] += g
        return grad


class PairSumWraps(PairSum):
    @staticmethod
    def backward(ctx, g):
        n = g.shape[0] + 1
        grad = torch.zeros(n, dtype=g.dtype)
        for i in range(n):
            grad[i] = (g[i] if i < n - 1 else 0) + g[i - 1]   # BUG: at i = 0, g[-1] wraps around
        return grad


def pair_sum_symbolic(x):
    """The symbolic side as a Python function over the object array of x's element symbols."""
    return x[:-1] + x[1:]


plant(Planted("pair-sum-wraparound", "one-element", "a loop's g[i-1] wraps to g[-1] at i = 0", PairSum,
              PairSumWraps, {"x": normal((5,), 18)}, pair_sum_symbolic))


class Diff(Function):
    """y[i] = x[i+1] - x[i]."""

    @staticmethod
    def forward(ctx, x):
        return x[1:] - x[:-1]

    @staticmethod
    def backward(ctx, g):
        grad = torch.zeros(g.shape[0] + 1, dtype=g.dtype)
        grad[1:] += g
        grad[:-1] -= g
        return grad


class DiffLastDropped(Diff):
    @staticmethod
    def backward(ctx, g):
        grad = torch.zeros(g.shape[0] + 1, dtype=g.dtype)
        grad[1:-1] += g[:-1]                   # BUG: off by one, the last element never gets its g
        grad[:-1] -= g
        return grad


plant(Planted("diff-last-element", "one-element", "the last element's gradient is left at zero", Diff,
              DiffLastDropped, {"x": normal((5,), 19)}, "x[1:] - x[:-1]"))


class Trace(Function):
    @staticmethod
    def forward(ctx, m):
        ctx.shape = m.shape
        return torch.trace(m)

    @staticmethod
    def backward(ctx, g):
        return g * torch.eye(ctx.shape[0], dtype=g.dtype)


class TraceTypo(Trace):
    @staticmethod
    def backward(ctx, g):
        eye = torch.eye(ctx.shape[0], dtype=g.dtype)
        eye[2, 1] = 1.0                        # BUG: a stray 1 off the diagonal (meant eye[2, 2] = 1)
        return g * eye


plant(Planted("trace-stray-element", "one-element", "an identity with a stray off-diagonal 1", Trace, TraceTypo,
              {"m": normal((3, 3), 20)}, "trace(m)"))
