"""One OpInfo sample -> one verifier case, or :class:`Unsupported` with the reason.

The sample's tensors become literal inputs ``t0, t1, ...`` (floating and
complex ones differentiated where the sample asks for it, integer and bool
ones as index inputs), its other arguments literals in the expression. A
sample with a complex tensor or a complex output (torch.fft) runs on the
complex route (docs/complex.md): complex128 for float64, complex64 for
float32, its real tensors ``dtype: real``. A sample the case language cannot
express (a dtype argument, a half-precision tensor, a tuple output without a
mirror reading, a gradcheck wrapper other than the Hermitian one) is never
run half-way: it is unsupported, with its reason (so is a complex sample the
complex route refuses for its size when it runs: audit/table.py's ``refused``). OpInfos that
PyTorch checks through its Hermitian wrapper (cholesky, eigvalsh) run on
A + Aᴴ with ``structure: symmetric``, as PyTorch tests them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from ..cases.registry import make_case
from ..errors import CaseError
from ..torch_side.autograd import torch_callable
from . import masked, opdb
from .mapping import Mapped

#: How closely the OpInfo's callable and the mirror's torch function must agree on a sample's forward before
#: the first stands in for the second (they run the same kernels; a wrapper that reorders arguments is far off).
SAME_FORWARD_RTOL = 1e-12
#: The complex route's dtype for each audit dtype: a complex sample runs in the complex dtype of the same precision.
COMPLEX_OF = {"float64": "complex128", "float32": "complex64"}


class Unsupported(Exception):
    """The sample cannot be written in the case language; the message says why."""


@dataclass(frozen=True)
class Slot:
    """Where input ``index`` (t<index>) goes in a sample's arguments."""

    index: int


#: mirror entries whose raw output is a gauge (docs/numeric-exact.md): the audit cannot write PyTorch's invariant
GAUGED = frozenset({"eig", "eigvals"})


def literal(value, inputs: dict, slots: list, grad: bool, complex_route: bool = False) -> tuple[str, object]:
    """(the case-language text of one argument, the same argument with its tensors replaced by Slots).

    ``slots`` receives each tensor as the torch side will get it (floating ones in float64, complex ones in
    complex128). On the complex route a real floating tensor stays real (``dtype: real``)."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(inputs)}"
        if value.dtype not in (torch.float64, torch.complex128) and (value.is_floating_point() or value.is_complex()):
            raise Unsupported(f"a {value.dtype} tensor argument")
        if value.numel() and (value.is_floating_point() or value.is_complex()) and not torch.isfinite(value).all():
            raise Unsupported("a tensor with nan or inf")
        if value.is_floating_point() or value.is_complex():
            spec = {"requires_grad": bool(grad and value.requires_grad)}
            if complex_route and value.is_floating_point():
                spec["dtype"] = "real"
            value = value.detach().resolve_conj()
            slots.append(value)
        else:
            spec = {"dtype": "bool" if value.dtype == torch.bool else "int64"}
            slots.append(value.detach() if value.dtype == torch.bool else value.detach().to(torch.int64))
            value = value.to(torch.int64)            # a case file writes a mask as 0/1
        if value.numel() == 0:
            spec.update(shape=list(value.shape), fill=0)
        else:
            spec["value"] = value.detach().tolist() if value.dim() else value.item()
        inputs[name] = spec
        return name, Slot(len(slots) - 1)
    if isinstance(value, (list, tuple)):
        pairs = [literal(v, inputs, slots, grad, complex_route) for v in value]
        texts, tpl = [p[0] for p in pairs], [p[1] for p in pairs]
        if isinstance(value, list):
            return "[" + ", ".join(texts) + "]", tpl
        return "(" + ", ".join(texts) + ("," if len(texts) == 1 else "") + ")", tuple(tpl)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value), value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unsupported("a non-finite number argument")
        return repr(value), value
    if isinstance(value, torch.dtype):
        raise Unsupported("a dtype argument: the case language has no torch.dtype literal")
    raise Unsupported(f"a {type(value).__name__} argument")


def fill(template, tensors):
    """The template with each Slot replaced by its tensor."""
    if isinstance(template, Slot):
        return tensors[template.index]
    if isinstance(template, list):
        return [fill(t, tensors) for t in template]
    if isinstance(template, tuple):
        return tuple(fill(t, tensors) for t in template)
    if isinstance(template, dict):
        return {k: fill(v, tensors) for k, v in template.items()}
    return template


class OpCall:
    """The torch side of an audit case: the OpInfo's own callable on the sample's arguments.

    Pickles as the OpInfo's (name, variant) when the op is torch's (a worker finds it in its own op_db);
    any other op (a test's planted one) travels as itself, and a case holding an unpicklable one runs in
    the calling process.
    """

    def __init__(self, op, template, finish=None) -> None:
        self.op, self.template, self.finish = op, template, finish
        self.key = (op.name, op.variant_test_name)
        self.text = f"the OpInfo {opdb.label(op)}'s callable"

    def __call__(self, *tensors):
        first, args, kwargs = fill(self.template, list(tensors))
        out = self.op.op(first, *args, **kwargs)
        return self.finish(out) if self.finish is not None and not isinstance(out, torch.Tensor) else out

    def __getstate__(self):
        state = dict(self.__dict__)
        try:
            from_db = opdb.find(*self.key) is self.op
        except Exception:
            from_db = False
        if from_db:
            state["op"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.op is None:
            self.op = opdb.find(*self.key)

    def __repr__(self) -> str:
        return self.text


def case_for(op, mapped: Mapped, sample, index: int, dtypes):
    """One verifier case for a sample, or raise Unsupported."""
    wrapper = getattr(op.gradcheck_wrapper, "__name__", "")
    hermitian = wrapper == "gradcheck_wrapper_hermitian_input"
    if wrapper not in ("<lambda>", "gradcheck_wrapper_hermitian_input", *masked.WRAPPERS):
        raise Unsupported(f"the OpInfo checks through {wrapper}")
    if wrapper in masked.WRAPPERS and not mapped.direct:
        raise Unsupported(f"the OpInfo checks through {wrapper}, which the audit writes around the op itself only")
    if not isinstance(sample.input, torch.Tensor) and not isinstance(sample.input, (list, tuple)):
        raise Unsupported(f"the sample's input is a {type(sample.input).__name__}")
    with torch.no_grad():
        first = sample.input + sample.input.mH if hermitian else sample.input
        try:
            out = op.op(first, *sample.args, **sample.kwargs)
        except Exception as exc:
            raise Unsupported(f"torch itself raises on the sample ({type(exc).__name__})") from None
        keep = (masked.output_mask(wrapper, op, first, sample.args, sample.kwargs)
                if wrapper in masked.WRAPPERS and isinstance(out, torch.Tensor) else None)
        if keep is not None:
            out = torch.where(keep, out, out.new_zeros([]))         # what PyTorch's gradcheck differentiates
    if not isinstance(out, torch.Tensor):
        if mapped.entry is None or mapped.entry.finish is None:
            raise Unsupported(f"the op returns a {type(out).__name__} (a tuple), which the mirror does not read")
        try:
            out = mapped.entry.finish(out)
        except Exception as exc:
            raise Unsupported(f"the op's tuple output is not one value of the mirror ({type(exc).__name__}: "
                              f"{str(exc)[:60]}); e.g. pieces of unequal sizes") from None
    if not isinstance(out, torch.Tensor) or not (out.is_floating_point() or out.is_complex()):
        raise Unsupported(f"the op returns a {getattr(out, 'dtype', type(out).__name__)} output")
    if out.numel() and not torch.isfinite(out).all():
        raise Unsupported("torch's forward is nan or inf on this sample (outside the function's real domain): "
                          "no gradient to compare")
    complex_route = out.is_complex() or _holds_complex((sample.input, sample.args, sample.kwargs))
    if mapped.entry is not None and mapped.entry.canonical in GAUGED:
        raise Unsupported(f"{mapped.entry.canonical}'s raw output depends on a gauge (eigenvalue order, eigenvector "
                          "phases): PyTorch checks it through output_process_fn_grad against LAPACK's own order, which "
                          "an exact reference has not; the built-in cases check gauge-invariant functions of it")
    if complex_route and hermitian:
        raise Unsupported("a complex sample of an OpInfo checked through its Hermitian wrapper")
    inputs: dict = {}
    slots: list = []
    if hermitian:
        first = first.detach().requires_grad_(sample.input.requires_grad)
    text0, tpl0 = literal(first if not isinstance(first, tuple) else list(first), inputs, slots, True, complex_route)
    if hermitian:
        inputs["t0"]["structure"] = "symmetric"
    args = [literal(a, inputs, slots, True, complex_route) for a in sample.args]
    kwargs = {k: literal(v, inputs, slots, True, complex_route) for k, v in sample.kwargs.items()}
    if not any(spec.get("requires_grad") for spec in inputs.values()):
        raise Unsupported("no input requires grad")
    if complex_route:
        dtypes = [COMPLEX_OF[d] for d in dtypes]
    text = _expression(mapped, [text0, *(a[0] for a in args)], [f"{k}={v[0]}" for k, v in kwargs.items()])
    if keep is not None and not keep.all():
        text = masked.wrapped(text, literal(keep, inputs, slots, False)[0])
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"audit.{opdb.label(op)}.{index}")
    fields = dict(grad_output="random", dtypes=list(dtypes), tags=["audit", op.name], description=text[:200])
    at_zero = isinstance(sample.input, torch.Tensor) and sample.input.numel() and not sample.input.any()
    if "subgradient" in op.variant_test_name and at_zero:    # PyTorch puts these samples at a kink on purpose
        fields["kink"] = (f"the OpInfo {opdb.label(op)} samples torch's subgradient convention at a kink; "
                          f"autograd must equal the exact reference's (torch's documented) convention there")
    try:
        case = make_case(name, inputs, forward=text, **fields)
    except CaseError as exc:
        raise Unsupported(f"the case language refuses it: {exc.message}") from None
    if mapped.direct:
        return case
    template = (tpl0, [a[1] for a in args], {k: v[1] for k, v in kwargs.items()})
    call = OpCall(op, template, mapped.entry.finish if mapped.entry is not None else None)
    _same_forward(case, call, slots)
    return make_case(name, inputs, forward=text, torch=call, **fields)     # exact side: the expression


def _expression(mapped: Mapped, positional: list, keywords: list) -> str:
    """The case-language call of the sample's parts (an operator form, a method, or a function)."""
    if mapped.form:
        if keywords or len(positional) != mapped.form.count("{"):
            raise Unsupported(f"the operator form {mapped.form} takes {mapped.form.count('{')} operands, "
                              f"not this sample's {len(positional)} and {len(keywords)} keywords")
        return mapped.form.format(*positional)
    if mapped.order is not None:
        if len(positional) != len(mapped.order):
            raise Unsupported(f"the OpInfo reorders {len(mapped.order)} parts; this sample has {len(positional)}")
        positional = [positional[i] for i in mapped.order]
    if mapped.call.startswith("."):
        return f"{positional[0]}{mapped.call}{', '.join(positional[1:] + keywords)})"
    return f"{mapped.call}{', '.join(positional + keywords)})"


def _holds_complex(value) -> bool:
    """Whether a sample's part (a tensor, or a list/tuple/dict of parts) holds a complex tensor."""
    if isinstance(value, torch.Tensor):
        return value.is_complex()
    if isinstance(value, (list, tuple)):
        return any(_holds_complex(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_complex(v) for v in value.values())
    return False


def _same_forward(case, call: OpCall, tensors: list) -> None:
    """Unsupported unless the mirror's torch function gives the OpInfo callable's forward on this sample."""
    try:
        with torch.no_grad():
            mine = torch_callable(case)(*tensors)
            theirs = call(*tensors)
    except Exception as exc:
        raise Unsupported(f"{case.description[:60]} raises where the OpInfo's callable does not "
                          f"({type(exc).__name__}); the OpInfo wraps the function") from None
    if not (isinstance(mine, torch.Tensor) and isinstance(theirs, torch.Tensor) and mine.shape == theirs.shape
            and torch.allclose(_wide(mine), _wide(theirs), rtol=SAME_FORWARD_RTOL, atol=0, equal_nan=True)):
        raise Unsupported("the OpInfo's callable and the mirror's torch function differ on this sample's "
                          "forward (the OpInfo wraps the function)")



def _wide(t: torch.Tensor) -> torch.Tensor:
    """complex128 for a complex tensor (never dropping its imaginary part), float64 otherwise."""
    return t.resolve_conj().to(torch.complex128) if t.is_complex() else t.double()
