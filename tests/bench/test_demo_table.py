"""The README's local-profile tables are the committed fresh-clone run's, not typed by hand."""

import json

from tests.bench import load_script
from tests.conftest import REPO


def test_the_readmes_stage_and_claims_tables_are_the_committed_runs():
    table = load_script("demo_table")
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    readme = (REPO / "README.md").read_text()
    assert table.rendered_readme(readme, results) == readme, "README.md's tables are stale: run python bench/demo_table.py --write"


def test_the_committed_claims_are_the_flows_own_and_each_has_a_verdict():
    results = json.loads((REPO / "bench" / "results" / "demo.json").read_text())
    claims = results["claims"]["claims"]
    assert len(claims) >= 9 and all(c["holds"] in (True, False) for c in claims), "every claim measured in the committed run"
    forgetting = next(c for c in claims if c["measure"].startswith("probe accuracy"))
    assert forgetting["low"] is not None and forgetting["high"] is not None, "forgetting is a row, with its interval"
    assert (REPO / "bench" / "results" / "claims.md").read_text().count("\n| ") == 1 + len(claims)
