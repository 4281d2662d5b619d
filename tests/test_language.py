"""The case language: what parses, what is refused, and how it evaluates."""

from __future__ import annotations

import pytest

from verifier.cases.language import MAX_LENGTH, Reading, parse
from verifier.errors import ExpressionError, UnknownFunctionError

_NAMES = {"exp", "sum", "mean", "softmax", "where", "relu", "einsum"}


def KNOWN(name):  # noqa: N802  the stand-in for the mirror table: any namespace, these names
    return name.rsplit(".", 1)[-1] in _NAMES


def check(src, variables=("x", "y", "idx", "i")):
    return parse(src, known_functions=KNOWN, variables=frozenset(variables),
                 function_names=["exp", "sum", "mean", "softmax", "where", "relu", "einsum"])


@pytest.mark.parametrize("src", [
    pytest.param("(3*(x+2)**2).mean()", id="seed"),
    pytest.param("torch.sum(3*x*y)", id="torch-prefix"),
    pytest.param("F.softmax(x, dim=0) @ y", id="F-prefix-matmul"),
    pytest.param("torch.nn.functional.relu(-x)", id="full-prefix"),
    pytest.param("x.T.exp().sum(dim=(0, 1), keepdim=True)", id="methods-T-tuple"),
    pytest.param("where(x > 0, x, 0.5 * y)", id="compare"),
    pytest.param("x[0, 1:3, None, ...] + x[-1]", id="indexing"),
    pytest.param("x[idx]", id="index-tensor"),
    pytest.param("x[[0, 2]] + x[[[1], [0]]]", id="index-lists"),
    pytest.param("einsum('ij,jk->ik', x, y)", id="string-argument"),
    pytest.param("softmax(x, dim=None) * sum((x, y))", id="none-and-tuple-arguments"),
    pytest.param("(x +\n   y).sum()", id="multi-line-in-parentheses"),
    pytest.param("  exp(x)  ", id="surrounding-blanks"),
    pytest.param("x ** 2 ** 10 * 10 ** -300", id="moderate-constant-arithmetic"),
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
    pytest.param("{v for v in x}", "set comprehension", id="setcomp"),
    pytest.param("{v: v for v in x}", "dict comprehension", id="dictcomp"),
    pytest.param("sum(v for v in x)", "generator", id="genexp"),
    pytest.param("(w := x)", "walrus", id="walrus"),
    pytest.param("f'{x}'", "f-string", id="fstring"),
    pytest.param("x * b'a'", "the constant b'a'", id="bytes"),
    pytest.param("exp(...)", "the constant Ellipsis", id="ellipsis-outside-index"),
    pytest.param("x.grad", "attribute '.grad'", id="grad-attr"),
    pytest.param("x.T.__class__", "attribute '.__class__'", id="attr-after-T"),
    pytest.param("torch.__dict__", "attribute '.__dict__' at column 7", id="module-dict"),
    pytest.param("F.__builtins__['eval']('1')", "not allowed", id="module-builtins"),
    pytest.param("torch.nn.Module(x)", "module path 'torch.nn'", id="torch-nn-class"),
    pytest.param("exp(x)._version()", "the name '_version'", id="private-method"),
    pytest.param("exp(x, __class__=1)", "the keyword '__class__'", id="dunder-keyword"),
    pytest.param("x['a']", "subscript", id="string-subscript"),
    pytest.param("x[1.5]", "subscript", id="float-subscript"),
    pytest.param("x[[exp(x)]]", "integer literal", id="computed-index-list"),
    pytest.param("x[x > 0]", "subscript", id="comparison-subscript"),
    pytest.param("x[i + 1]", "subscript", id="arithmetic-subscript"),
    pytest.param("x[1:exp(x)]", "integer literal", id="computed-slice"),
    pytest.param("'ab' * 10**9", "a string outside a function's arguments", id="string-repetition"),
    pytest.param("[x] * 10**9", "a list outside a function's arguments", id="list-repetition"),
    pytest.param("(x, y) + 1", "a tuple outside a function's arguments", id="tuple-operand"),
    pytest.param("x + None", "None outside a function's arguments", id="none-operand"),
    pytest.param("(x > 0) * x", "a comparison outside a function's arguments", id="comparison-operand"),
    pytest.param("'x'", "a string outside", id="bare-string"),
    pytest.param("exp(x)(y)", "calling the result", id="call-result"),
    pytest.param("x[0](y)", "calling the result", id="call-subscript"),
    pytest.param("not x", "unary operator Not", id="not"),
    pytest.param("~x", "unary operator Invert", id="invert"),
    pytest.param("x if x else y", "conditional", id="ifexp-2"),
    pytest.param("await x", "", id="await"),
])
def test_refused(src, words):
    with pytest.raises(ExpressionError) as info:
        check(src)
    assert words in str(info.value)


def test_every_refusal_is_one_line_with_a_position_and_a_pointer_to_the_docs():
    for src in ["x.shape", "lambda: x", "x[exp(x)]", "'a' * 3", "open('/etc/passwd')"]:
        with pytest.raises(ExpressionError) as info:
            check(src)
        message = str(info.value)
        assert "\n" not in message and "column" in message, message
        assert "docs/case-language.md" in message or "inputs are" in message or "Only .T" in message \
            or "Index with" in message or "Strings" in message, message


@pytest.mark.parametrize("src, where, snippet", [
    pytest.param("x + x.__class__", "column 7", "x.__class__", id="attribute-name"),
    pytest.param("  x.shape", "column 5", "x.shape", id="leading-blanks"),
    pytest.param("(x +\n  y.shape)", "line 2, column 5", "y.shape", id="second-line"),
    # a non-ASCII string is now refused by name before parsing: tests/test_hardening_input.py
    pytest.param("exp(x) + (lambda: x)", "column 11", "lambda: x", id="lambda"),
    pytest.param("exp(x, y)[x + 1]", "column 11", "x + 1", id="subscript"),
])
def test_refusals_point_at_the_construct(src, where, snippet):
    with pytest.raises(ExpressionError) as info:
        check(src)
    assert f" at {where} " in str(info.value)
    assert f"(`{snippet}`)" in str(info.value)


def test_a_syntax_error_points_at_its_column():
    with pytest.raises(ExpressionError, match="invalid expression syntax at column 7"):
        check("exp(x))")


def test_an_unknown_function_suggests_the_closest_name():
    with pytest.raises(UnknownFunctionError, match=r"unknown function 'sofmax' at column 1 \(did you mean 'softmax'\?\)"):
        check("sofmax(x)")


@pytest.mark.parametrize("src", [
    pytest.param("x * 9**9**9", id="tower"),
    pytest.param("x * (10**4000) ** 3", id="cube-of-a-giant"),
    pytest.param("x * 2 ** 100000", id="big-exponent"),
])
def test_constant_arithmetic_that_would_blow_up_is_refused_when_evaluated(src):
    with pytest.raises(ExpressionError, match="constant arithmetic whose result has about"):
        check(src).evaluate(Calls())


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
    assert check("x.sum(dim=0)").evaluate(Calls()) == ("Tensor.sum", (2,), (("dim", 0),))


def test_each_spelling_calls_its_fully_qualified_name():
    """The namespace is kept: torch.relu and F.relu are different torch callables."""
    full = check("torch.nn.functional.relu(x)").evaluate(Calls())
    assert full[0] == "torch.nn.functional.relu"
    assert check("F.relu(x)").evaluate(Calls()) == full
    assert check("nn.functional.relu(x)").evaluate(Calls()) == full
    assert check("torch.relu(x)").evaluate(Calls())[0] == "torch.relu"
    assert check("relu(x)").evaluate(Calls())[0] == "relu"


def test_arithmetic_is_interpreted_without_eval():
    assert check("(x + 2) ** 2 * y - 1").evaluate(Calls()) == 47
