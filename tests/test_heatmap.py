"""Heat maps of per-element errors: layout, colours, reduction, and their place in report.html."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from verifier import Runner, make_case
from verifier.report import tables
from verifier.report.heatmap import EXACT, MISSING, colour, for_case
from verifier.report.html_report import render
from verifier.report.writing import environment

DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]


def _image(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def _rows(torch_src: str, sympy_src: str, inputs: dict, dtype: str = "float64", **fields):
    case = make_case("heat.case", inputs, torch=torch_src, sympy=sympy_src, dtypes=[dtype], **fields)
    result = Runner().run(case, dtype)
    return result


def test_colours_separate_pass_from_fail():
    ratios = np.array([0.0, 1e-9, 1e-3, 0.9, 1.5, 1e4, np.nan])
    rgb = colour(ratios)
    assert tuple(rgb[0]) == EXACT and tuple(rgb[-1]) == MISSING
    reds = rgb[:, 0].astype(int) - rgb[:, 2].astype(int)
    assert (reds[1:4] < 0).all(), "within tolerance is blue"
    assert (reds[4:6] > 0).all(), "outside tolerance is red"
    assert rgb[3].sum() < rgb[2].sum() < rgb[1].sum(), "blues darken towards the tolerance"


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_wrong_element_is_red_where_it_sits(dtype):
    # torch is wrong only for x[1, 2] (where the mask is 1): the map must show exactly that cell
    result = _rows("(x**2 + m * x**2).sum()", "(x**2).sum()",
                   {"x": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
                    "m": {"value": [[0, 0, 0], [0, 0, 1]], "requires_grad": False}}, dtype)
    maps = {m.side: m for m in for_case(result.rows)}
    ag = maps["autograd"]
    assert ag.shape == (2, 3) and ag.outside == 1
    pixels = _image(ag.uri)
    cell = ag.width // 3
    assert pixels.shape == (2 * cell, 3 * cell, 3)
    centres = pixels[cell // 2::cell, cell // 2::cell].astype(int)
    is_red = centres[..., 0] - centres[..., 2] > 0
    assert is_red.tolist() == [[False, False, False], [False, False, True]]


def test_a_long_vector_is_wrapped_and_a_large_one_reduced_without_losing_a_failure():
    n = 300
    ok = _rows("(x**2).sum()", "(x**2).sum()", {"x": {"shape": [n], "sample": "normal"}})
    (ag, fd) = for_case(ok.rows)
    assert (ag.height, ag.width) == (10 * 4, 32 * 4)             # 10 rows of 32 cells, 4 px each
    assert "rows of 32" in ag.note and ag.outside == 0
    # one wrong element among 100 x 100: pooled to 50 x 50 blocks, still red
    big = _rows("(x**2 + m * x**2).sum()", "(x**2).sum()",
                {"x": {"shape": [100, 100], "fill": 0.5},
                 "m": {"value": [[1.0 if (i, j) == (37, 81) else 0.0 for j in range(100)] for i in range(100)],
                       "requires_grad": False}})
    (ag,) = [m for m in for_case(big.rows) if m.side == "autograd"]
    assert ag.outside == 1 and "2x2 block" in ag.note
    pixels = _image(ag.uri).astype(int)
    red = (pixels[..., 0] - pixels[..., 2]) > 0
    ys, xs = np.nonzero(red)
    cell = ag.width // 50
    assert set(ys // cell) == {37 // 2} and set(xs // cell) == {81 // 2}


def test_the_report_embeds_the_maps_and_escapes_messages():
    result = _rows("(2 * x**2).sum()", "(x**2).sum()", {"x": [1.0, 2.0]})
    result.message = "torch said <class 'NoneType'> & more"
    page = render([result], tables.summary([result]), environment("test"))
    assert page.count('src="data:image/png;base64,') == 2
    assert "torch said &lt;class &#39;NoneType&#39;&gt; &amp; more" in page or \
        "torch said &lt;class &#x27;NoneType&#x27;&gt; &amp; more" in page
    assert "<class 'NoneType'>" not in page


def test_a_digested_result_keeps_heat_maps_of_every_element():
    """The run drops passing rows before the report: the maps still cover the whole gradient, failure included."""
    from verifier.run import digest

    big = _rows("(x**2 + m * x**2).sum()", "(x**2).sum()",
                {"x": {"shape": [100, 100], "fill": 0.5},
                 "m": {"value": [[1.0 if (i, j) == (37, 81) else 0.0 for j in range(100)] for i in range(100)],
                       "requires_grad": False}})
    before = [(m.side, m.uri, m.outside) for m in for_case(big.rows)]
    digest.apply(big, digest.DetailPolicy(keep=3))
    assert len(big.rows) == 3                                   # the 3 worst, the wrong element among them
    assert list(big.rows.loc[~big.rows["ok"], "index"]) == ["(37, 81)"]
    after = [(m.side, m.uri, m.outside) for m in __import__("verifier.report.heatmap", fromlist=["x"])
             .from_grids(big.heat)]
    assert after == before and any(outside == 1 for _, _, outside in after)
