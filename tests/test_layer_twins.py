"""Every nn layer's planted bug (tests/corpus/layers.py) is caught in float64 and float32; its correct twin passes.

The twins run on the built-in cases' own inputs: a caught bug means the
built-in case would catch that bug in torch's backward. Forward-mode and
double-backward checks are off (the twins implement neither; the gradient
check is what is under test).
"""

from __future__ import annotations

import pytest
from corpus.layers import DTYPES, KINDS, LAYER_BUGS
from corpus.registry import assert_caught, assert_passes

from verifier import Runner
from verifier.exact import mirror

ENTRIES = [pytest.param(entry, id=entry.id) for entry in LAYER_BUGS]
RUNNER = Runner(forward_mode=False, second_order=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_layer_bug_is_caught(entry, dtype):
    assert_caught(RUNNER.run(entry.run_case(buggy=True), dtype), entry.bug)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_correct_layer_twin_passes(entry, dtype):
    assert_passes(RUNNER.run(entry.run_case(buggy=False), dtype))


LAYERS = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d",
          "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
          "adaptive_max_pool2d", "batch_norm", "group_norm", "instance_norm", "rms_norm", "embedding", "pad",
          "interpolate", "scaled_dot_product_attention", "unfold", "fold", "pixel_shuffle", "cdist", "pdist",
          "grid_sample", "margin_ranking_loss", "hinge_embedding_loss", "triplet_margin_loss", "poisson_nll_loss",
          "gaussian_nll_loss", "multilabel_soft_margin_loss", "cosine_embedding_loss"]


def test_every_layer_the_issue_lists_has_a_mirror_a_case_and_a_twin():
    from corpus.layers import _library
    assert set(LAYERS) <= set(mirror.FUNCTIONS)
    cases = _library()
    with_case = {name for name in LAYERS if any(name in c.tags for c in cases.values())}
    assert with_case == set(LAYERS), set(LAYERS) - with_case
    twinned = {cases[e.case].tags[1] for e in LAYER_BUGS}
    assert twinned == set(LAYERS), set(LAYERS) - twinned
    assert {e.kind for e in LAYER_BUGS} <= set(KINDS)
    assert len({e.id for e in LAYER_BUGS}) == len(LAYER_BUGS)
