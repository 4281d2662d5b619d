"""Coverage of torch's derivatives.yaml: the data in tests/data/derivatives_names.csv, checked and printed.

Run with -s to see the count and the names not covered with their reasons.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from derivatives_rule import derivatives_yaml, derive

from verifier.exact.mirror import resolve

DATA = Path(__file__).parent / "data" / "derivatives_names.csv"
FAMILIES = {"elementwise", "reductions", "shape/indexing", "linalg"}
#: The coverage this branch reached; lower it only with a reason in the commit message.
FLOOR = 206
LANGUAGE_FORMS = {"x[index]"}     # covered by the case language itself, not by a mirror function


def rows() -> list[dict]:
    with DATA.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def covered(row) -> bool:
    if not row["mirror"]:
        return False
    if row["mirror"] in LANGUAGE_FORMS:
        return True
    resolve(row["mirror"])          # raises when the named mirror does not exist
    return True


def test_the_list_is_what_the_rule_derives_from_the_installed_torch():
    path = derivatives_yaml()
    if path is None:
        pytest.skip("torchgen's packaged derivatives.yaml is not installed")
    kept, _ = derive(path)
    assert [r["name"] for r in rows()] == list(kept)
    assert all(r["operators"].split() == kept[r["name"]] for r in rows())


def test_every_row_is_well_formed():
    for row in rows():
        assert row["family"] in FAMILIES, row
        assert bool(row["mirror"]) != bool(row["reason"]), f"{row['name']}: a mirror or a reason, not both"


def test_coverage_is_printed_and_does_not_regress():
    table = rows()
    done = [r for r in table if covered(r)]
    by_family = Counter(r["family"] for r in table)
    done_family = Counter(r["family"] for r in done)
    print(f"\nderivatives.yaml coverage: {len(done)}/{len(table)} ({100 * len(done) / len(table):.0f} %)")
    for family in sorted(by_family):
        print(f"  {family:15} {done_family[family]:4}/{by_family[family]}")
    print("not covered:")
    for r in table:
        if not covered(r):
            print(f"  {r['name']:32} {r['reason']}")
    assert len(table) == 244
    assert len(done) >= FLOOR


def test_a_mirror_that_does_not_exist_is_not_counted():
    from verifier.errors import UnknownFunctionError
    with pytest.raises(UnknownFunctionError):
        covered({"mirror": "no_such_function", "reason": ""})
    assert not covered({"mirror": "", "reason": "not done"})
