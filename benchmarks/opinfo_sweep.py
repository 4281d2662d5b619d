"""Run PyTorch's own OpInfo sample inputs through the verifier, as cases.

For every OpInfo in ``torch.testing._internal.common_methods_invocations.op_db``
that the case language can express (its function is in the mirror, and the
mirror's torch callable is that op), each float64 sample input
(``small_inputs_only=True``) becomes a case: its tensors become literal
inputs (floating ones differentiated where the sample asks for it, integer and
bool ones as index inputs), its other arguments become literals in the
expression. The cases run through the ordinary runner in worker processes
with a time limit each, and the script prints the ops mapped, the samples,
pass / fail / error / timeout, and the cause of every non-pass, grouped.

A sample the language cannot express (a dtype argument, a tuple output, a
complex tensor, a gradcheck wrapper other than the Hermitian one) is counted
as a *refusal* with its reason; it is never run half-way. OpInfos whose
gradcheck wrapper symmetrizes the input (cholesky, eigh-style ops) run with
``structure: symmetric`` on the input A + Aᴴ, as PyTorch tests them.

    python benchmarks/opinfo_sweep.py                      # every mappable op, 4 samples each
    python benchmarks/opinfo_sweep.py --ops 'relu|softmax' --limit 0 --timeout 60

``op_db`` is private to PyTorch and needs the ``expecttest`` package:
``pip install -e '.[audit]'``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from verifier import make_case  # noqa: E402
from verifier.errors import CaseError  # noqa: E402
from verifier.exact import mirror  # noqa: E402
from verifier.run.isolation import run_cases  # noqa: E402

PREFIXES = {"": "torch.", "nn.functional": "F.", "linalg": "torch.linalg.", "special": "torch.special."}


class Refusal(Exception):
    """The sample cannot be written in the case language; the message says why."""


def load_op_db():
    try:
        import expecttest  # noqa: F401  (op_db imports it)
    except ImportError:
        raise SystemExit("opinfo_sweep needs the 'expecttest' package for torch's OpInfo database: "
                         "pip install -e '.[audit]'") from None
    try:
        from torch.testing._internal.common_methods_invocations import op_db
    except Exception as exc:  # a private module: it may move between torch versions
        raise SystemExit(f"cannot import torch.testing._internal.common_methods_invocations.op_db "
                         f"({type(exc).__name__}: {exc}); it is private to torch {torch.__version__} and may "
                         f"have moved") from None
    return op_db


def spelling(op) -> tuple[str | None, str]:
    """(how the case language calls the op, as 'F.relu(' or '.expand(' for a method; None) and why not."""
    namespace, _, last = op.name.rpartition(".")
    if namespace not in PREFIXES:
        return None, f"namespace '{namespace}' is not in the case language"
    try:
        entry = mirror.resolve(last)
    except Exception:
        return None, f"'{last}' is not in the mirror"
    mine, theirs = entry.torch, op.op
    if mine is theirs or (getattr(mine, "__name__", "") == getattr(theirs, "__name__", "?")
                          and getattr(mine, "__name__", "") != "<lambda>"):
        return PREFIXES[namespace] + last + "(", ""
    if getattr(theirs, "__name__", "") == "<lambda>" and namespace == "" and op.method_variant is not None:
        return "." + last + "(", ""                       # a method-only op: x.expand(...)
    if getattr(mine, "__name__", "") == "<lambda>" and getattr(theirs, "__name__", "").endswith(last):
        return PREFIXES[namespace] + last + "(", ""         # the mirror wraps it (cross -> linalg.cross)
    return None, (f"the mirror's '{last}' runs {getattr(mine, '__module__', '?')}.{getattr(mine, '__name__', '?')}, "
                  f"not the OpInfo's {getattr(theirs, '__name__', '?')}")


def literal(value, inputs: dict, grad: bool) -> str:
    """The case-language text of one argument, adding its tensors to ``inputs``."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(inputs)}"
        if value.is_complex() or value.dtype in (torch.float16, torch.bfloat16, torch.float32):
            raise Refusal(f"a {value.dtype} tensor argument")
        if value.numel() and value.is_floating_point() and not torch.isfinite(value).all():
            raise Refusal("a tensor with nan or inf")
        if value.is_floating_point():
            spec = {"requires_grad": bool(grad and value.requires_grad)}
        else:
            spec = {"dtype": "bool" if value.dtype == torch.bool else "int64"}
            value = value.to(torch.int64)            # a case file writes a mask as 0/1
        if value.numel() == 0:
            spec.update(shape=list(value.shape), fill=0)
        else:
            spec["value"] = value.detach().tolist() if value.dim() else value.item()
        inputs[name] = spec
        return name
    if isinstance(value, (list, tuple)):
        parts = [literal(v, inputs, grad) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(parts) + "]"
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Refusal("a non-finite number argument")
        return repr(value)
    if isinstance(value, torch.Size):
        return literal(tuple(value), inputs, grad)
    if isinstance(value, torch.dtype):
        raise Refusal("a dtype argument: the case language has no torch.dtype literal")
    raise Refusal(f"a {type(value).__name__} argument")


def case_for(op, call: str, sample, index: int):
    """One verifier case for a sample, or raise Refusal."""
    wrapper = getattr(op.gradcheck_wrapper, "__name__", "")
    hermitian = wrapper == "gradcheck_wrapper_hermitian_input"
    if wrapper not in ("<lambda>", "gradcheck_wrapper_hermitian_input"):
        raise Refusal(f"the OpInfo checks through {wrapper}")
    with torch.no_grad():
        first = sample.input + sample.input.mH if hermitian else sample.input
        try:
            out = op.op(first, *sample.args, **sample.kwargs)
        except Exception as exc:
            raise Refusal(f"torch itself raises on the sample ({type(exc).__name__})") from None
    if not isinstance(out, torch.Tensor):
        raise Refusal(f"the op returns a {type(out).__module__}.{type(out).__name__} (a tuple), not a tensor")
    if not out.is_floating_point():
        raise Refusal(f"the op returns a {out.dtype} tensor")
    inputs: dict = {}
    if isinstance(sample.input, torch.Tensor) and hermitian:
        first = first.detach().requires_grad_(sample.input.requires_grad)
    parts = [literal(first, inputs, True)] if not isinstance(sample.input, (list, tuple)) else [
        literal(list(sample.input), inputs, True)]
    if hermitian:
        inputs["t0"]["structure"] = "symmetric"
    parts += [literal(a, inputs, True) for a in sample.args]
    parts += [f"{k}={literal(v, inputs, True)}" for k, v in sample.kwargs.items()]
    if not any(spec.get("requires_grad") for spec in inputs.values()):
        raise Refusal("no input requires grad")
    if call.startswith("."):
        text = f"{parts[0]}{call}{', '.join(parts[1:])})"
    else:
        text = f"{call}{', '.join(parts)})"
    name = f"opinfo.{op.name}{'.' + op.variant_test_name if op.variant_test_name else ''}.{index}"
    try:
        return make_case(re.sub(r"[^A-Za-z0-9._-]", "_", name), inputs, forward=text, grad_output="random",
                         dtypes=["float64"], tags=["opinfo", op.name], description=text[:200])
    except CaseError as exc:
        raise Refusal(f"the case language refuses it: {exc.message}") from None


def kind(result) -> str:
    """How a non-pass reads: a failed check, a timeout, torch's own error, a crash, or a refusal."""
    if result.status != "error":
        return result.status
    if result.message.startswith("torch raised"):
        return "error (torch raised)"
    if re.match(r"[A-Za-z]*(Error|Exception): ", result.message):
        return "error (crash)"
    return "error (refused)"      # a CaseError: the verifier says what it cannot do and why


def cause(result) -> str:
    """A non-pass result's cause with numbers, names and indices blanked, for grouping."""
    text = result.message or result.status
    text = text.split("; ", 1)[0] if result.status == "fail" else text
    text = re.sub(r"\bt\d+\b", "tN", text)
    text = re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", text)
    return text[:160]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", default="", help="regular expression selecting OpInfo names (default: all)")
    p.add_argument("--limit", type=int, default=4, help="samples per OpInfo (0: all; default 4)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per case (default 30)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    args = p.parse_args(argv)
    op_db = load_op_db()
    select = re.compile(args.ops) if args.ops else None
    ops = [op for op in op_db if (select is None or select.search(op.name)) and op.supports_autograd]
    cases, refusals, unmapped, mapped = [], Counter(), Counter(), set()
    refused_ops = defaultdict(set)
    for op in ops:
        call, why = spelling(op)
        if call is None:
            unmapped[why if "mirror's" in why else re.sub(r"^'[^']*' ", "the function ", why)] += 1
            continue
        mapped.add(op.name)
        try:
            samples = op.sample_inputs("cpu", torch.float64, requires_grad=True, small_inputs_only=True)
            taken = 0
            for i, sample in enumerate(samples):
                if args.limit and taken >= args.limit:
                    break
                taken += 1
                try:
                    cases.append(case_for(op, call, sample, i))
                except Refusal as exc:
                    refusals[str(exc)] += 1
                    refused_ops[str(exc)].add(op.name)
        except Exception as exc:   # torch's sample generator itself
            refusals[f"the OpInfo's samples raise ({type(exc).__name__})"] += 1
    print(f"torch {torch.__version__}: {len(ops)} OpInfos with autograd selected, {len(mapped)} mapped to the "
          f"case language, {len(cases) + sum(refusals.values())} samples, {len(cases)} expressible, "
          f"{sum(refusals.values())} refused")
    start = time.perf_counter()
    results = run_cases([(c, "float64") for c in cases], workers=args.jobs, timeout=args.timeout)
    statuses = Counter(r.status for r in results)
    print(f"ran {len(results)} cases in {time.perf_counter() - start:.0f} s: "
          + ", ".join(f"{statuses.get(s, 0)} {s}" for s in ("pass", "fail", "error", "timeout", "skip")))
    groups = defaultdict(list)
    for r in results:
        if r.status != "pass":
            groups[(kind(r), cause(r))].append(r)
    print("\nnon-passes, grouped by cause (count, status, ops, cause, one example):")
    for (status, text), rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        ops_hit = sorted({r.case.tags[1] for r in rs})
        # the verifier names a documented torch fact in the failed check's text (verdict/torch_facts.py)
        facts = {m.group(1) if (m := re.search(r"known torch fact '([^']+)'", r.message)) else "" for r in rs}
        fact = "', '".join(sorted(facts)) if "" not in facts and status == "fail" else ""   # every result: a fact
        print(f"  {len(rs):4d} {status:20s} [{', '.join(ops_hit[:6])}{', ...' if len(ops_hit) > 6 else ''}] {text}"
              + (f"  <- torch facts '{fact}' (docs/torch-findings.md)" if fact else ""))
        print(f"       e.g. {rs[0].name}: {rs[0].case.description[:150]}")
    print("\nrefused samples, grouped by reason:")
    for reason, n in refusals.most_common():
        print(f"  {n:4d} {reason}  [{', '.join(sorted(refused_ops[reason])[:6])}]")
    print("\nOpInfos not mapped, by reason:")
    for reason, n in unmapped.most_common(12):
        print(f"  {n:4d} {reason}")
    return 0 if statuses.get("fail", 0) + statuses.get("error", 0) + statuses.get("timeout", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
