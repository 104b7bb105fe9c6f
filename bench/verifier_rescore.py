"""The verifier on a seed spread's final models: what best-of-N against greedy becomes when the
final model's samples are ranked by a reward model trained again from it (`recipe.verifier`).

    python bench/verifier_rescore.py --clone /tmp/seed-spread-XXXX/repo [--offsets 0 1 2] [--out bench/results/verifier_spread.json]

A run of bench/seed_spread.py --keep from a commit before the verifier trained every stage of the
recipe; the verifier changes none of them, only what ranks the final model's samples. So for each
seed offset this takes that run's final model (reports/seed<k>/summary.json), trains the verifier
from it with this checkout's `verifier` params (its seed shifted by k, as seed_spread.py shifts
every post-training seed) and evaluates it on the held-out set with the `evaluate` params, as the
flow's final evaluation does: the same stage code, inputs and configs a whole run of this commit
would use, without training the rest again. Per offset: greedy pass@1, bon@8 by the verifier and
the claim's paired interval, beside bon@8 by the run's own reward model (its claims.json).
Measurement, not tuning: nothing here is chosen by it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from seed_spread import shifted_params  # noqa: E402

from components import claims, evaluate, reward_model  # noqa: E402
from components.versioning import git_commit  # noqa: E402
from flows.params import PipelineParams, load_params  # noqa: E402


def offset_params(offset: int) -> PipelineParams:
    """This checkout's local params with every post-training seed shifted by `offset` (seed_spread.py's rule)."""
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    effective = load_params(REPO / "params.yaml", "local").model_dump(mode="json")
    shifted, _ = shifted_params(document, effective, offset, "reports")
    shifted.pop("profiles", None)
    return PipelineParams.model_validate(shifted)


def rescore(clone: Path, offset: int, out: Path) -> dict:
    summary = json.loads((clone / "reports" / f"seed{offset}" / "summary.json").read_text())
    final = summary["model"]["stage"]
    model = str(clone / summary["stages"][final]["outputs"]["model"])
    params, data = offset_params(offset), clone / "data"
    verifier = reward_model.run(params.verifier, {"model": model, "prefs": str(data / "prefs.jsonl")}, str(out / f"verifier{offset}"))
    inputs = {"model": model, "eval": str(data / "eval.jsonl"), "reward_model": verifier.outputs["model"]}
    evaluation = evaluate.run(params.evaluate, inputs, str(out / f"evaluate{offset}"))
    run = claims.RunFiles(evaluations={final: evaluation.outputs}, final=final, best_of_n_scorer="verifier")
    row = claims.best_of_n_over_greedy(run)
    before = next(
        c for c in json.loads((clone / "reports" / f"seed{offset}" / "claims.json").read_text())["claims"] if c["claim"] == row.claim
    )
    return {
        "offset": offset,
        "final_model": summary["stages"][final]["outputs"]["model"],
        "greedy": row.right,
        "bon_verifier": row.left,
        "effect": row.effect,
        "interval": [row.low, row.high],
        "holds": row.holds,
        "greedy_in_run": before["right"],  # the same model, config and seed: the same greedy answers
        "bon_reward_model": before["left"],
        "effect_reward_model": before["effect"],
        "verifier_held_out_pairwise_accuracy": verifier.metrics.get("held_out_pairwise_accuracy"),
        "verifier_seconds": round(verifier.wall_seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clone", type=Path, required=True, help="a bench/seed_spread.py --keep clone (its repo folder)")
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "verifier_spread.json")
    parser.add_argument("--work", type=Path, default=Path("/tmp/verifier-rescore"))
    args = parser.parse_args()
    rows = []
    for offset in args.offsets:
        rows.append(rescore(args.clone, offset, args.work))
        print(json.dumps(rows[-1]), flush=True)
    commit = json.loads((args.clone / "reports" / f"seed{args.offsets[0]}" / "summary.json").read_text())["lineage"]["git_commit"]
    result = {"spread_commit": commit, "verifier_commit": git_commit(REPO, short=True), "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
