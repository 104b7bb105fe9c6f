"""Artifacts on disk: JSONL/parquet I/O, content digests, and stage cache keys.

Stages meet only through artifacts, so a stage's cache key is a hash of its config, the
digests of its input artifacts and the source of the code that produces it: the same key
means the same result, and the key also names the stage's output directory.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

COMPONENTS_DIR = Path(__file__).resolve().parent


MAX_LINE_BYTES = 8 << 20  # one dataset row; a longer line is a wrong file, not a training example


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file and line."""


def read_records(path: str | Path) -> list[dict]:
    """Read a JSONL or parquet dataset as a list of dicts."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    if path.suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: unsupported dataset format {path.suffix!r} (use .jsonl or .parquet)")
    records = []
    with path.open("rb") as handle:  # bytes: bad UTF-8 and oversized lines are named by line
        for lineno, line in enumerate(handle, start=1):
            if len(line) > MAX_LINE_BYTES:
                raise DataError(
                    f"{path}:{lineno}: a {len(line) / 2**20:.0f} MiB line, over the {MAX_LINE_BYTES >> 20} MiB "
                    "any one row may hold: is this the right file?"
                )
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not UTF-8 text (byte {line[exc.start]:#04x} at column {exc.start + 1})") from None
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno}: each line must be a JSON object")
            records.append(record)
    return records


def write_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write records as JSONL atomically, so a crash never leaves half a dataset behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, payload: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def digest_path(path: str | Path) -> str:
    """sha256 of a file, or of a directory's relative file names and contents (sorted)."""
    path = Path(path)
    hasher = hashlib.sha256()
    if path.is_file():
        files = [path]
        root = path.parent
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        root = path
    else:
        raise DataError(f"cannot digest {path}: no such file or directory")
    for file in files:
        hasher.update(str(file.relative_to(root)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(chunk)
    return hasher.hexdigest()


def code_version(stage_module: str) -> str:
    """Hash of a stage's source and of every `components` module it imports, transitively."""
    hasher = hashlib.sha256()
    for name in sorted(component_dependencies(stage_module)):
        hasher.update(name.encode())
        hasher.update(module_source(name).read_bytes())
    return hasher.hexdigest()


def module_source(module: str) -> Path:
    """The source file of a dotted module name; a bare name means `components.<name>`."""
    import importlib.util

    dotted = module if "." in module else f"components.{module}"
    if dotted.startswith("components."):
        return COMPONENTS_DIR / f"{dotted.removeprefix('components.')}.py"
    spec = importlib.util.find_spec(dotted)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(f"no source for stage module {dotted!r}")
    return Path(spec.origin)


def parse_source(source: Path, attempts: int = 3) -> ast.Module:
    """`ast.parse` of a file, retried on CPython 3.11's spurious "AST constructor recursion depth
    mismatch": the AST builder's recursion counter is shared between threads (cpython gh-106905),
    so a parse that overlaps another thread's (a Prefect worker thread's) can fail although the
    source is fine. Retried at once: the overlap is over by then."""
    text = source.read_text()
    for _ in range(attempts - 1):
        try:
            return ast.parse(text)
        except SystemError as error:
            if "recursion depth mismatch" not in str(error):
                raise
    return ast.parse(text)


def component_dependencies(module: str, found: set[str] | None = None) -> set[str]:
    """`module` and the `components.*` modules it imports (lazily inside functions too), as dotted names."""
    found = set() if found is None else found
    dotted = module if "." in module else f"components.{module}"
    source = module_source(dotted)
    if dotted in found or not source.exists():
        return found
    found.add(dotted)
    for node in ast.walk(parse_source(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "components":
            names = [f"components.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("components."):
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("components.")]
        else:
            continue
        for name in names:
            component_dependencies(name, found)
    return found


def cache_key(stage: str, cfg: BaseModel, input_digests: Mapping[str, str], module: str | None = None) -> str:
    """The key of a stage's result: config + input digests + code version."""
    payload = {
        "stage": stage,
        "config": cfg.model_dump(mode="json"),
        "inputs": dict(sorted(input_digests.items())),
        "code": code_version(module or stage),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
