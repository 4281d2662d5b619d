"""A generated, representative set of cases for the speed benchmark (P3), by family.

Sizes are what a case library holds: a few to a few hundred elements, in
float64 and float32. The set is fixed (seeded inputs), so runs compare.
"""

from __future__ import annotations

import verifier


def _x(shape, seed=1, **extra):
    return {"shape": list(shape), "sample": "normal", "seed": seed, **extra}


def _pos(shape, seed=1):
    return {"shape": list(shape), "sample": "uniform", "seed": seed, "low": 0.5, "high": 2.0}


# name: (inputs, forward)
CASES = {
    # elementwise
    "elementwise.exp": ({"x": _x([4, 5])}, "torch.exp(x)"),
    "elementwise.tanh": ({"x": _x([16])}, "torch.tanh(x)"),
    "elementwise.sigmoid_mul": ({"x": _x([8, 8])}, "torch.sigmoid(x) * x"),
    "elementwise.softplus": ({"x": _x([32])}, "F.softplus(x, beta=2)"),
    "elementwise.gelu": ({"x": _x([6, 6])}, "F.gelu(x)"),
    "elementwise.log": ({"x": _pos([10])}, "torch.log(x)"),
    "elementwise.sqrt_pow": ({"x": _pos([3, 4])}, "torch.sqrt(x) + x ** 1.5"),
    "elementwise.atan2": ({"y": _x([5]), "x": _pos([5], 2)}, "torch.atan2(y, x)"),
    "elementwise.erf": ({"x": _x([12])}, "torch.erf(x)"),
    "elementwise.broadcast_mul": ({"x": _x([4, 6]), "b": _x([6], 2)}, "x * b + b"),
    # reductions
    "reductions.sum_dim": ({"x": _x([5, 7])}, "x.sum(dim=1)"),
    "reductions.mean_keepdim": ({"x": _x([4, 6])}, "x.mean(dim=0, keepdim=True)"),
    "reductions.prod": ({"x": _x([6])}, "torch.prod(x)"),
    "reductions.logsumexp": ({"x": _x([3, 16])}, "torch.logsumexp(x, dim=1)"),
    "reductions.var": ({"x": _x([20])}, "torch.var(x)"),
    "reductions.std_dim": ({"x": _x([4, 8])}, "torch.std(x, dim=1)"),
    "reductions.norm": ({"x": _x([4, 4])}, "torch.norm(x)"),
    "reductions.cumsum": ({"x": _x([12])}, "torch.cumsum(x, dim=0)"),
    "reductions.cumprod": ({"x": _pos([10])}, "torch.cumprod(x, dim=0)"),
    "reductions.amax": ({"x": _x([4, 5])}, "torch.amax(x, dim=1)"),
    # shape and indexing
    "shape.reshape": ({"x": _x([4, 6])}, "x.reshape(3, 8) * 2"),
    "shape.transpose": ({"x": _x([3, 5])}, "x.T @ x"),
    "shape.permute": ({"x": _x([2, 3, 4])}, "x.permute(2, 0, 1) ** 2"),
    "shape.cat": ({"x": _x([3, 4]), "y": _x([2, 4], 2)}, "torch.cat([x, y], dim=0) ** 2"),
    "shape.stack": ({"x": _x([5]), "y": _x([5], 2)}, "torch.stack([x, y * x])"),
    "shape.slice": ({"x": _x([6, 6])}, "x[1:4, ::2] ** 2"),
    "shape.gather": ({"x": _x([4, 5]), "i": {"value": [[0, 1], [2, 3], [4, 0], [1, 1]], "dtype": "int64"}},
                     "torch.gather(x, 1, i)"),
    "shape.index_select": ({"x": _x([6, 3]), "i": {"value": [0, 2, 5], "dtype": "int64"}},
                           "torch.index_select(x, 0, i) * 3"),
    "shape.where": ({"x": _x([10]), "y": _x([10], 2)}, "torch.where(x > 0, x * y, y)"),
    "shape.expand": ({"x": _x([3, 1])}, "x.expand(3, 4) * torch.exp(x)"),
    # linear algebra
    "linalg.matvec": ({"A": _x([6, 6]), "v": _x([6], 2)}, "A @ v"),
    "linalg.matmul": ({"A": _x([8, 8]), "B": _x([8, 8], 2)}, "A @ B"),
    "linalg.batched_matmul": ({"A": _x([2, 4, 3]), "B": _x([2, 3, 4], 2)}, "torch.bmm(A, B)"),
    "linalg.outer": ({"a": _x([5]), "b": _x([4], 2)}, "torch.outer(a, b)"),
    "linalg.trace": ({"A": _x([5, 5])}, "torch.trace(A @ A)"),
    "linalg.det": ({"A": _x([3, 3])}, "torch.det(A)"),
    "linalg.inv": ({"A": {"value": [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]}}, "torch.inverse(A)"),
    "linalg.solve": ({"A": {"value": [[4.0, 1.0], [1.0, 3.0]]}, "b": _x([2], 2)}, "torch.linalg.solve(A, b)"),
    "linalg.einsum": ({"a": _x([3, 4]), "b": _x([4, 5], 2)}, "torch.einsum('ij,jk->ik', a, b)"),
    # nn functional
    "nn.softmax": ({"x": _x([4, 8])}, "F.softmax(x, dim=1)"),
    "nn.log_softmax": ({"x": _x([32])}, "F.log_softmax(x, dim=0)"),
    "nn.layer_norm": ({"x": _x([4, 16])}, "F.layer_norm(x, [16])"),
    "nn.mse_loss": ({"x": _x([20]), "t": _x([20], 2, requires_grad=False)}, "F.mse_loss(x, t)"),
    "nn.cross_entropy": ({"x": _x([4, 5]), "t": {"value": [0, 3, 1, 4], "dtype": "int64"}},
                         "F.cross_entropy(x, t)"),
    "nn.linear": ({"x": _x([3, 4]), "W": _x([5, 4], 2), "b": _x([5], 3)}, "F.linear(x, W, b)"),
    "nn.mlp": ({"x": _x([4, 6]), "W1": _x([8, 6], 2), "W2": _x([3, 8], 3)},
               "F.mse_loss(F.linear(torch.tanh(F.linear(x, W1)), W2), x[:, :3])"),
    "nn.cosine_similarity": ({"a": _x([3, 6]), "b": _x([3, 6], 2)}, "F.cosine_similarity(a, b, dim=1)"),
}


def representative_cases() -> list:
    """The set as ``Case`` objects (float64 and float32, random weights for non-scalar outputs)."""
    out = []
    for name, (inputs, forward) in CASES.items():
        out.append(verifier.make_case(f"bench.{name}", inputs, forward=forward, grad_output="random",
                                      dtypes=["float64", "float32"], tags=[name.split(".")[0]]))
    return out
