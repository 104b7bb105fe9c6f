"""bench/replay_sweep.py: its validation probe is drawn like the held-out one and shares no prompt with it."""

import pytest

from components import data
from components.artifacts import read_records
from components.tuning import HeldOutError, refuse_held_out
from tests.bench import load_script


def test_the_validation_probe_is_disjoint_from_the_held_out_probe(tmp_path):
    bench = load_script("replay_sweep")
    data_dir = tmp_path / "data"
    data.run(data.Config(out_dir=str(data_dir)))  # the local profile's held-out probe: 200 prompts
    probe = bench.validation_probe(str(data_dir), tmp_path, n=150)

    drawn, held_out = read_records(probe), read_records(data_dir / "probe.jsonl")
    assert len(drawn) == 150 and len({r["prompt"] for r in drawn}) == 150
    assert not {r["prompt"] for r in drawn} & {r["prompt"] for r in held_out}
    assert all(str(eval(r["prompt"][:-1])) == r["answer"] for r in drawn), "the answers are the sums and differences"
    refuse_held_out(probe, data_dir)  # not refused: it is not the held-out probe
    with pytest.raises(HeldOutError):
        refuse_held_out(data_dir / "probe.jsonl", data_dir)


def test_a_distill_run_reuses_a_finished_runs_teacher_answers_and_healed_student(tmp_path):
    bench = load_script("replay_sweep")
    finished = tmp_path / "finished"
    (finished / "student-healed").mkdir(parents=True)
    (finished / "teacher_sft.jsonl").write_text('{"messages": []}\n')
    (finished / "teacher_stats.json").write_text('{"teacher_kept": 1}')
    (finished / "student-healed" / "healed.json").write_text("{}")
    (finished / "student-healed" / "model.safetensors").write_text("weights")

    run = tmp_path / "runs" / "w1"
    bench.reuse_distill_folder(str(finished), run)
    # where components.distill looks for an interrupted run's work: it is reused, not drawn or healed again
    assert (run / "teacher_stats.json").read_text() == '{"teacher_kept": 1}'
    assert (run / "teacher_sft.jsonl").is_file() and (run / "student-healed" / "healed.json").is_file()
    assert (run / "student-healed" / "model.safetensors").read_text() == "weights"
