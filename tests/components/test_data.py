"""Unit tests of the synthetic data generator: deterministic, verifiable, uncontaminated."""

import json
from pathlib import Path

import pytest

from components import data
from components.answers import extract_answer, is_correct
from components.artifacts import digest_path, read_records
from components.data import mistake_kind
from components.reward_model import REJECTED_KINDS, rejected_kind

SMALL = dict(n_pretrain=50, n_sft=120, n_prefs=40, n_rl=40, n_eval=30, n_val=20, n_probe=20)


def test_generation_is_deterministic_for_a_seed(tmp_path):
    first = data.run(data.Config(out_dir=str(tmp_path / "a"), **SMALL))
    second = data.run(data.Config(out_dir=str(tmp_path / "b"), **SMALL))
    assert first.info["data_digest"] == second.info["data_digest"]
    third = data.run(data.Config(out_dir=str(tmp_path / "c"), seed=7, **SMALL))
    assert third.info["data_digest"] != first.info["data_digest"]


def test_counts_and_formats(tmp_path):
    result = data.run(data.Config(out_dir=str(tmp_path), **SMALL))
    assert result.metrics == {f"count_{k}": float(SMALL[f"n_{k}"]) for k in data.DATASET_KINDS}
    sft = read_records(result.outputs["sft"])
    assert [m["role"] for m in sft[0]["messages"]] == ["user", "assistant"]
    prefs = read_records(result.outputs["prefs"])
    assert set(prefs[0]) == {"prompt", "chosen", "rejected"}
    rl = read_records(result.outputs["rl"])
    assert set(rl[0]) >= {"prompt", "answer"}


def test_every_solution_is_verifiably_correct_and_its_steps_add_up():
    sets = data.generate(data.Config(**SMALL))
    for record in sets["rl"] + sets["eval"]:
        assert is_correct(extract_answer(record["solution"]), record["answer"])
        for line in record["solution"].split("\n")[1:-2]:
            left, result = line.split("=")
            assert eval(left) == int(result)  # noqa: S307 - digits and +/- only
    kinds = set()
    for record in sets["prefs"]:
        chosen, rejected = record["chosen"][0]["content"], record["rejected"][0]["content"]
        assert chosen != rejected
        kinds.add(kind := rejected_kind(chosen, rejected))
        if kind != "format":  # a format break may keep the right number, unboxed or outside a closed block
            assert extract_answer(chosen) != extract_answer(rejected)
    assert kinds == set(REJECTED_KINDS), "the near-misses cover every kind the reward model is judged on"


def test_eval_questions_never_appear_in_training_sets_nor_in_the_validation_split():
    sets = data.generate(data.Config(**SMALL))
    eval_questions = {r["prompt"][0]["content"] for r in sets["eval"]}
    val_questions = {r["prompt"][0]["content"] for r in sets["val"]}
    training = {r["messages"][0]["content"] for r in sets["sft"]}
    training |= {r["prompt"][0]["content"] for r in sets["prefs"] + sets["rl"]}
    assert not eval_questions & training and not eval_questions & val_questions
    assert not val_questions & training, "tuning on val measures generalisation, not memory"
    assert "val" not in data.generate(data.Config(**{**SMALL, "n_val": 0})), "no validation split asked for, none written"


def test_user_files_are_normalized_to_the_conversational_format(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "rl.jsonl").write_text(json.dumps({"prompt": "What is 2+3?", "answer": 5}) + "\n")
    (user / "eval.jsonl").write_text(json.dumps({"prompt": "What is 4+4?", "answer": "8"}) + "\n")
    (user / "sft.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n"
    )
    (user / "prefs.jsonl").write_text(json.dumps({"prompt": "q", "chosen": "good", "rejected": "bad"}) + "\n")
    files = {kind: str(user / f"{kind}.jsonl") for kind in ("rl", "eval", "sft", "prefs")}
    result = data.run(data.Config(source="files", files=files, out_dir=str(tmp_path / "out")))
    rl = read_records(result.outputs["rl"])
    assert rl == [{"prompt": [{"role": "user", "content": "What is 2+3?"}], "answer": "5"}]
    prefs = read_records(result.outputs["prefs"])[0]
    assert prefs["chosen"] == [{"role": "assistant", "content": "good"}]


def test_files_source_requires_the_core_files():
    with pytest.raises(ValueError, match="no entry for: sft, prefs, rl, eval"):
        data.Config(source="files", files={})


def test_a_missing_user_file_is_named(tmp_path):
    files = {kind: str(tmp_path / f"{kind}.jsonl") for kind in ("rl", "eval", "sft", "prefs")}
    with pytest.raises(data.DataError, match=r"not found: .*sft\.jsonl|not found: .*rl\.jsonl"):
        data.run(data.Config(source="files", files=files, out_dir=str(tmp_path / "out")))


def test_a_broken_user_file_names_file_and_line(tmp_path):
    bad = tmp_path / "sft.jsonl"
    bad.write_text('{"messages": []}\n{not json\n')
    with pytest.raises(data.DataError, match=r"sft\.jsonl:2: not valid JSON"):
        read_records(bad)


def test_digest_changes_when_a_byte_changes(tmp_path):
    result = data.run(data.Config(out_dir=str(tmp_path), **SMALL))
    before = digest_path(tmp_path)
    path = tmp_path / "eval.jsonl"
    path.write_text(path.read_text().replace("apples", "pears", 1))
    assert digest_path(tmp_path) != before
    assert result.info["data_digest"] == before


def test_committed_data_dvc_pointer_is_reproduced_by_the_generator(tmp_path):
    """data.dvc in git names exactly what `params.yaml` generates: the data version is reproducible."""
    import yaml

    from components.versioning import read_dvc_md5, track_data
    from flows.params import load_params
    from tests.conftest import make_project

    project = make_project(tmp_path / "p")
    cfg = load_params("params.yaml").data.model_copy(update={"out_dir": str(project / "data")})
    data.run(cfg)
    facts = track_data(project / "data", push=False)
    assert facts["data_md5"] == read_dvc_md5("data.dvc") == yaml.safe_load(Path("data.dvc").read_text())["outs"][0]["md5"]


def test_a_general_knowledge_probe_asks_in_chat_and_leaves_the_other_datasets_as_they_were(tmp_path):
    arithmetic = data.run(data.Config(out_dir=str(tmp_path / "a"), **SMALL))
    general = data.run(data.Config(out_dir=str(tmp_path / "g"), probe="general_knowledge", **SMALL))
    probes = read_records(general.outputs["probe"])
    assert len(probes) == SMALL["n_probe"] and len({p["prompt"][0]["content"] for p in probes}) == SMALL["n_probe"]
    assert all([turn["role"] for turn in p["prompt"]] == ["user"] and p["answer"].strip() for p in probes)
    assert all(isinstance(p["prompt"], str) for p in read_records(arithmetic.outputs["probe"]))
    for kind in set(data.DATASET_KINDS) - {"probe"}:  # switching the probe must not change what is trained on
        assert Path(general.outputs[kind]).read_bytes() == Path(arithmetic.outputs[kind]).read_bytes(), kind


def test_asking_for_more_general_knowledge_probes_than_there_are_is_refused():
    with pytest.raises(ValueError, match=r"n_probe \(101\) is more than the 100 general-knowledge questions"):
        data.Config(probe="general_knowledge", n_probe=101)


def test_a_system_prompt_opens_every_prompt_but_the_probes(tmp_path):
    system = "Reason inside <think></think>, then give the answer as \\boxed{}."
    result = data.run(data.Config(out_dir=str(tmp_path), probe="general_knowledge", system_prompt=system, **SMALL))
    firsts = [r["messages"][0] for r in read_records(result.outputs["sft"])]
    firsts += [r["prompt"][0] for kind in ("prefs", "rl", "eval", "val") for r in read_records(result.outputs[kind])]
    assert firsts and all(turn == {"role": "system", "content": system} for turn in firsts)
    assert all([t["role"] for t in r["prompt"]] == ["user"] for r in read_records(result.outputs["probe"])), (
        "the probe asks as any user would, without the task's instructions"
    )


REFERENCE = "<think>\n20+5=25\n25-3=22\n</think>\nThe answer is \\boxed{22}."
MISTAKES = {
    "right": REFERENCE,
    "step_count": "<think>\n20+5=25\n</think>\nThe answer is \\boxed{25}.",
    "wrong_operation": "<think>\n20-5=15\n15-3=12\n</think>\nThe answer is \\boxed{12}.",
    "misread_number": "<think>\n20+6=26\n26-3=23\n</think>\nThe answer is \\boxed{23}.",
    "broken_carry": "<think>\n20+5=25\n24-3=21\n</think>\nThe answer is \\boxed{21}.",
    "arithmetic_slip": "<think>\n20+5=26\n26-3=23\n</think>\nThe answer is \\boxed{23}.",
    "wrong_final": "<think>\n20+5=25\n25-3=22\n</think>\nThe answer is \\boxed{21}.",
    "format": "<think>\n20+5=25\n25-3=22\n</think>\nThe answer is 22.",
}


@pytest.mark.parametrize("kind", MISTAKES)
def test_mistake_kind_names_the_first_mistake_against_the_reference(kind):
    assert mistake_kind(REFERENCE, MISTAKES[kind]) == kind
    assert kind == "right" or kind in data.MISTAKE_KINDS


def test_mistake_kind_reads_reasoning_that_is_not_steps_as_a_format_mistake():
    assert mistake_kind(REFERENCE, "<think>\nsome words\n</think>\nThe answer is \\boxed{22}.") == "format"


def test_digit_balanced_drills_give_each_digit_count_a_fair_share_and_change_only_the_drills(tmp_path):
    rng = __import__("random").Random(0)
    counts = {1: 0, 2: 0, 3: 0}
    for _ in range(3000):
        counts[len(str(data.draw_number(rng, 1, 999, digit_balanced=True)))] += 1
    assert all(800 < n < 1200 for n in counts.values()), counts  # uniform draws would give ~30 / ~270 / ~2700
    assert all(10 <= data.draw_number(rng, 10, 12, digit_balanced=True) <= 12 for _ in range(50))

    settings = SMALL | {"max_operand": 999, "pretrain_worked_fraction": 0.0}
    uniform = data.run(data.Config(out_dir=str(tmp_path / "u"), **settings))
    balanced = data.run(data.Config(out_dir=str(tmp_path / "b"), drill_operands="digit_balanced", **settings))
    steps = [line for r in read_records(balanced.outputs["pretrain"]) for line in r["text"].split("\n")]
    operands = [int(x) for line in steps for x in line.split("=")[0].replace("-", "+").split("+")]
    assert all(eval(line.split("=")[0]) == int(line.split("=")[1]) for line in steps)  # noqa: S307 - digits and +/- only
    assert sum(n < 100 for n in operands) > len(operands) / 3, "short numbers a fair share of the drills"
    for kind in ("sft", "rl", "eval", "val"):  # the task itself is the same: only the drills change
        assert Path(balanced.outputs[kind]).read_bytes() == Path(uniform.outputs[kind]).read_bytes(), kind
    pairs = [read_records(result.outputs["prefs"]) for result in (balanced, uniform)]
    assert [(r["prompt"], r["chosen"]) for r in pairs[0]] == [(r["prompt"], r["chosen"]) for r in pairs[1]]  # near-misses drawn after
