"""A registered version's model card: what it is, where it came from, how it scored, how to serve it.

Built from the version's tags alone (lineage, `metric.*` at registration, later `eval.*`,
`gate.*`, `cost.*`), so registration writes it and the gate rewrites it once it has decided.
Markdown: the registry shows it as the version's description, and it is logged as
`model_card.md` beside the model files (as written at registration).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from components.serving import CHAT_EXAMPLE, CHAT_TASK, REWARD_EXAMPLE, REWARD_TASK, SERVING_TASK_TAG

MAX_CHARS = 5000  # the registry's description column: PostgreSQL refuses longer
LONG_VALUE = 120  # a tag longer than this (per-problem scores, JSON) is summarised, not printed

LINEAGE = {  # tag -> what a reader calls it, in the order they ask
    "parent_model": "parent model",
    "stage": "stage",
    "git_commit": "git commit",
    "params_hash": "params hash",
    "data_md5": "data md5",
    "data_versioned_by": "data versioned by",
    "validation_status": "data validation",
    "model_digest": "model files (sha256)",
    "profile": "profile",
    "prefect_flow_run_id": "Prefect flow run",
}
GATE = {  # gate.* tags (components.promotion) shown in the gate table
    "gate.method": "method",
    "gate.metric": "metric",
    "gate.difference": "difference vs champion",
    "gate.ci_low": "CI low",
    "gate.ci_high": "CI high",
    "gate.confidence": "confidence",
    "gate.champion": "champion it was compared with",
    "gate.guard_failures": "guard failures",
    "gate.decided_at": "decided at",
}
SECTION_PREFIXES = ("metric.", "eval.", "gate.", "cost.", "champion.", "promotion.", "rollback.")


def build(name: str, tags: Mapping[str, str], version: str | None = None) -> str:
    """The card of `name` (version `version`, when known) from its tags; at most MAX_CHARS long."""
    task = tags.get(SERVING_TASK_TAG)
    sections = [
        _title(name, tags, task),
        _table("Lineage", "", _lineage_rows(tags)),
        _table("Metrics at registration", "held-out evaluation of these files", _prefixed(tags, "metric."), numbers=True),
        _table("Evaluations", "`eval.*` tags: gate evidence, evaluate-model runs", _prefixed(tags, "eval."), numbers=True),
        _gate(tags),
        _table("Cost", "", _prefixed(tags, "cost."), numbers=True),
        _usage(name, version, task),
    ]
    return _cap("\n\n".join(s for s in sections if s) + "\n")


def _title(name: str, tags: Mapping[str, str], task: str | None) -> str:
    what = {CHAT_TASK: "A chat policy", REWARD_TASK: "A reward model"}.get(task, "A model")
    stage = f" (stage `{tags['stage']}`)" if tags.get("stage") else ""
    parent = f", trained from `{tags['parent_model']}`" if tags.get("parent_model") else ""
    return f"# {name}\n\n{what}{stage}{parent}."


def _lineage_rows(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    known = [(label, tags[key]) for key, label in LINEAGE.items() if tags.get(key)]
    base = [(key.replace("_", " "), tags[key]) for key in sorted(tags) if key.startswith("base_model")]
    other = [(key, tags[key]) for key in sorted(tags) if _is_other(key)]
    return known + base + other


def _is_other(key: str) -> bool:
    return key not in LINEAGE and key != SERVING_TASK_TAG and not key.startswith(("base_model", *SECTION_PREFIXES))


def _prefixed(tags: Mapping[str, str], prefix: str) -> list[tuple[str, str]]:
    return [(key.removeprefix(prefix), _per_problem(key, tags[key])) for key in sorted(tags) if key.startswith(prefix)]


def _per_problem(key: str, value: str) -> str:
    """`eval.per_problem.*` is one '0'/'1' per eval problem (components.gate): the card gives the count."""
    if key.startswith("eval.per_problem.") and value and not set(value) - {"0", "1"}:
        return f"{value.count('1')} of {len(value)} problems correct"
    return value


def _gate(tags: Mapping[str, str]) -> str:
    decision = tags.get("gate.decision")
    if not decision:
        return "## Promotion gate\n\nNo gate decision recorded (yet: a final model's card is rewritten once its gate decides)."
    reason = f": {tags['gate.reason']}" if tags.get("gate.reason") else ""
    rows = [(label, tags[key]) for key, label in GATE.items() if tags.get(key)]
    return _table("Promotion gate", f"**{decision}**{reason}", rows) or f"## Promotion gate\n\n**{decision}**{reason}"


def _usage(name: str, version: str | None, task: str | None) -> str:
    uri = f"models:/{name}/{version or 'VERSION'}"
    serve = f'mlflow models serve -m "{uri}" --env-manager local -h 127.0.0.1 -p 5001'
    if task == CHAT_TASK:
        request = json.dumps(CHAT_EXAMPLE | {"max_tokens": 64})
        return (
            "## Serving\n\nMLflow's `llm/v1/chat` task: POST an OpenAI-style chat request to /invocations and read "
            "`choices[0].message.content`. The messages are rendered with the tokenizer's chat template; generation "
            "defaults come from the model folder's generation_config.json, and `max_tokens` overrides their length.\n\n"
            f"```\n{serve}\ncurl -s 127.0.0.1:5001/invocations -H 'Content-Type: application/json' -d '{request}'\n```"
        )
    if task == REWARD_TASK:
        request = json.dumps({"inputs": [REWARD_EXAMPLE]})
        return (
            "## Serving\n\nPOST exchanges already rendered with the tokenizer's chat template, as "
            "components.scoring.RewardScorer renders them (the example is the tiny models' ChatML), and read each "
            "answer's `score`: the raw reward, higher is better. A head scorer is MLflow's `text-classification` "
            "pipeline (its `label` is always LABEL_0); a log-likelihood scorer is the pyfunc of components/reward_pyfunc.py.\n\n"
            f"```\n{serve}\ncurl -s 127.0.0.1:5001/invocations -H 'Content-Type: application/json' -d '{request}'\n```"
        )
    return ""


def _table(title: str, intro: str, rows: list[tuple[str, str]], numbers: bool = False) -> str:
    if not rows:
        return ""
    lines = [f"## {title}", "", *([intro, ""] if intro else []), "| | |", "|---|---|"]
    lines += [f"| {_cell(key)} | {_cell(_value(value, numbers))} |" for key, value in rows]
    return "\n".join(lines)


def _value(text: str, numbers: bool) -> str:
    """Metrics to 4 significant digits (never lineage: a git commit can read as a float), long values summarised."""
    text = str(text)
    if numbers and text.isdigit():  # a count (tokens): every digit
        return f"{int(text):,}"
    if numbers and _is_float(text) and math.isfinite(float(text)):
        return f"{float(text):.4g}"
    if len(text) > LONG_VALUE:
        return f"{text[:40]}... ({len(text)} characters)"
    return f"`{text}`" if text.startswith(("models:/", "sha256:")) else text


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _cap(card: str) -> str:
    if len(card) <= MAX_CHARS:
        return card
    note = "\n\n(cut to the registry's limit: the full tags are on the version)\n"
    return card[: MAX_CHARS - len(note)] + note
