"""report.html's per-case sections: the explain-style derivation (J, v, Jᵀv, Σ v⊙y, the route gap) for small cases."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
from wrong_backward import square_without_double_backward

from verifier import Runner, make_case
from verifier.report import tables
from verifier.report.html_report import render
from verifier.report.writing import environment

X = [0.5, -1.0, 2.0]
V = [1.0, 2.0, -0.5]


def _page(result) -> str:
    return html.unescape(render([result], tables.summary([result]), environment("test")))


def _section(page: str, name: str) -> str:
    start = page.index(f'<details class="case" id="case-{name}')
    return page[start:page.index("</details>", start)]


def test_a_wrong_gradient_shows_the_exact_jacobian_weights_jtv_and_the_scalar():
    # a planted wrong backward: the torch reading doubles the cube, the symbolic reading does not
    bad = Runner().run(make_case("deriv.bad", {"x": X}, torch="2 * x**3", sympy="x**3", grad_output=V), "float64")
    assert bad.status == "fail"
    section = _section(_page(bad), "deriv-bad")
    # J = diag(3x²) at the point, in full (9 entries <= 100)
    assert "J = ∂y/∂x (exact, 3 × 3)" in section
    jac = re.search(r"J = ∂y/∂x \(exact, 3 × 3\)</dt><dd>(.*?)</dd>", section, re.S).group(1)
    numbers = np.array([float(t) for t in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", jac)])
    assert np.allclose(numbers.reshape(3, 3), np.diag(3 * np.array(X) ** 2))
    assert "weights v" in section and "Jᵀv for x (exact)" in section
    total = float(np.dot(V, np.array(X) ** 3))
    assert f"<dt>Σ v⊙y</dt><dd>{total:.17g}</dd>" in section
    assert re.search(r"<dt>exact route</dt><dd>[^<]*\(the two routes differ by [0-9.e+-]+\)</dd>", section)


def test_a_passing_section_stays_small_and_a_large_jacobian_is_left_out():
    ok = Runner().run(make_case("deriv.ok", {"x": X}, forward="x**3", grad_output=V), "float64")
    assert ok.status == "pass" and ok.jacobian is None            # not kept for a pass: the page stays small
    assert "J = ∂y/∂x" not in _section(_page(ok), "deriv-ok")
    big = Runner().run(make_case("deriv.big", {"x": {"shape": [11], "fill": 0.5}}, torch="2 * x**3",
                                 sympy="x**3", grad_output="random"), "float64")
    assert big.status == "fail" and big.jacobian is None          # 121 entries > 100
    section = _section(_page(big), "deriv-big")
    assert "J = ∂y/∂x" not in section and "Jᵀv for x (exact)" in section


def test_a_row_failing_only_in_another_check_reports_that_checks_own_errors():
    def square_sum(x):
        return (x * x).sum()

    second = Runner().run(make_case("own.second_order", {"x": X}, torch=lambda x: square_without_double_backward(x).sum(),
                                    sympy=square_sum), "float64")
    stated = Runner().run(make_case("own.expect", {"x": [1.0, 2.0]}, forward="(x**2).sum()",
                                    expect={"output": 6.0}), "float64")
    right = Runner().run(make_case("own.right", {"x": X}, torch=square_sum, sympy=square_sum), "float64")
    summ = tables.summary([second, stated, right]).set_index("case")
    assert summ.loc["own.second_order", "status"] == "fail"
    assert summ.loc["own.second_order", "max_rel_err"] == 0                  # the gradient itself is right
    assert summ.loc["own.second_order", "check_max_rel_err"] == pytest.approx(1.0)    # torch's H·w is 0
    assert summ.loc["own.second_order", "check_max_abs_err"] > 0.5
    assert summ.loc["own.expect", "status"] == "fail"
    assert summ.loc["own.expect", "check_max_abs_err"] == pytest.approx(1.0)          # stated 6, exact 5
    assert summ.loc["own.right", "status"] == "pass"
    assert np.isnan(summ.loc["own.right", "check_max_rel_err"])


def test_a_passing_heat_map_is_drawn_only_when_it_shows_something():
    """Size: a passing map is one pale blue unless an element nears its allowance or sits at a kink."""
    exact = Runner().run(make_case("maps.exact", {"x": X}, forward="(x**2).sum()"), "float64")
    kink = Runner().run(make_case("maps.kink", {"x": [0.0, 1.0, -1.0]}, forward="torch.relu(x).sum()"), "float64")
    wrong = Runner().run(make_case("maps.wrong", {"x": X}, torch="(2 * x**2).sum()", sympy="(x**2).sum()"),
                         "float64")
    assert exact.status == kink.status == "pass" and wrong.status == "fail"
    page = _page_of([exact, kink, wrong])
    assert _section(page, "maps-exact").count("<img") == 0
    assert _section(page, "maps-kink").count("<img") == 1             # at a kink: autograd's map stays
    assert _section(page, "maps-wrong").count("<img") == 2            # not passing: both sides, always


def _page_of(results) -> str:
    return html.unescape(render(results, tables.summary(results), environment("test")))


def test_the_first_line_gives_a_failed_checks_own_error():
    from verifier.report import ci

    def square_sum(x):
        return (x * x).sum()

    second = Runner().run(make_case("own.line", {"x": X}, torch=lambda x: square_without_double_backward(x).sum(),
                                    sympy=square_sum), "float64")
    row = tables.summary([second]).to_dict("records")[0]
    assert ci.first_line(second, row) == "failed: second_order (max rel 1)"
