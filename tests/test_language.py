"""The case language: what parses, what is refused, and how it evaluates."""

from __future__ import annotations

import pytest

from verifier.errors import ExpressionError, UnknownFunctionError
from verifier.language import MAX_LENGTH, Reading, parse

KNOWN = {"exp", "sum", "mean", "softmax", "where", "relu"}.__contains__


def check(src, variables=("x", "y", "idx")):
    return parse(src, known_functions=KNOWN, variables=frozenset(variables))


@pytest.mark.parametrize("src", [
    pytest.param("(3*(x+2)**2).mean()", id="seed"),
    pytest.param("torch.sum(3*x*y)", id="torch-prefix"),
    pytest.param("F.softmax(x, dim=0) @ y", id="F-prefix-matmul"),
    pytest.param("torch.nn.functional.relu(-x)", id="full-prefix"),
    pytest.param("x.T.exp().sum(dim=(0, 1), keepdim=True)", id="methods-T-tuple"),
    pytest.param("where(x > 0, x, 0.5 * y)", id="compare"),
    pytest.param("x[0, 1:3, None, ...] + x[-1]", id="indexing"),
    pytest.param("x[idx]", id="index-tensor"),
])
def test_allowed(src):
    assert check(src).source == src


@pytest.mark.parametrize("src, words", [
    pytest.param("__import__('os').system('ls')", "'__import__' at column 1 is not allowed", id="import"),
    pytest.param("().__class__.__bases__[0].__subclasses__()", "not allowed", id="dunder-chain"),
    pytest.param("open('/etc/passwd').read()", "unknown function 'open'", id="open"),
    pytest.param("(lambda: x)()", "calling the result", id="lambda-call"),
    pytest.param("lambda: x", "lambda", id="lambda"),
    pytest.param("[x for x in y]", "comprehension", id="listcomp"),
    pytest.param("x.__class__", "attribute '.__class__'", id="dunder-attr"),
    pytest.param("x.shape", "attribute '.shape'", id="attr"),
    pytest.param("torch.os.system('x')", "module path", id="torch-os"),
    pytest.param("x[exp(x)]", "subscript", id="computed-subscript"),
    pytest.param("x if y else x", "conditional", id="ifexp"),
    pytest.param("x and y", "'and'", id="boolop"),
    pytest.param("{'a': x}", "dict", id="dict"),
    pytest.param("exp(*x)", "unpacking", id="star"),
    pytest.param("exp(**x)", "keyword unpacking", id="starstar"),
    pytest.param("z + 1", "unknown name 'z'", id="unknown-name"),
    pytest.param("x +", "invalid expression syntax", id="syntax"),
    pytest.param("x; import os", "invalid expression syntax", id="statement"),
    pytest.param("torch", "module name", id="bare-module"),
    pytest.param("0 < x < 1", "chained comparison", id="chained"),
    pytest.param("x % 2", "operator Mod", id="mod"),
])
def test_refused(src, words):
    with pytest.raises(ExpressionError) as info:
        check(src)
    assert words in str(info.value)


def test_unknown_function_is_its_own_error_and_points_to_the_list():
    with pytest.raises(UnknownFunctionError) as info:
        check("frobnicate(x)")
    assert "column 1" in str(info.value) and "docs/case-language.md" in str(info.value)


@pytest.mark.parametrize("src, limit", [
    pytest.param("x" + "+x" * (MAX_LENGTH // 2), "characters long", id="too-long"),
    pytest.param("-" * 150 + "x", "deeper", id="too-deep"),
    pytest.param("exp(" + ", ".join(["x"] * 450) + ")", "syntax nodes", id="too-many-nodes"),
])
def test_size_limits(src, limit):
    with pytest.raises(ExpressionError, match=limit):
        check(src)


class Calls(Reading):
    """A reading that records calls instead of computing."""

    def __init__(self):
        self.variables = {"x": 2, "y": 3, "idx": 0}

    def call(self, name, args, kwargs):
        return (name, tuple(args), tuple(sorted(kwargs.items())))


def test_method_call_passes_the_receiver_first():
    assert check("x.sum(dim=0)").evaluate(Calls()) == ("sum", (2,), (("dim", 0),))


def test_prefixed_and_bare_spellings_call_the_same_name():
    assert check("torch.nn.functional.relu(x)").evaluate(Calls()) == check("relu(x)").evaluate(Calls())


def test_arithmetic_is_interpreted_without_eval():
    assert check("(x + 2) ** 2 * y - 1").evaluate(Calls()) == 47
