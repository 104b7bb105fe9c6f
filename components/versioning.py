"""Data and code versions for lineage: DVC for `data/`, git for the code.

`track_data` runs `dvc add` on the data folder (and `dvc push` to the configured remote) and
returns the `.dir` md5 recorded in `data.dvc`: the cheapest stable key of the data version.
Outside a DVC repository it falls back to a content digest, and says so in the returned label.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from components.artifacts import digest_path

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


class VersioningError(RuntimeError):
    """A DVC or git command failed; the message carries its output."""


def find_dvc_root(path: str | Path) -> Path | None:
    for candidate in [Path(path).resolve(), *Path(path).resolve().parents]:
        if (candidate / ".dvc").is_dir():
            return candidate
    return None


def _dvc(root: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise VersioningError(f"dvc {' '.join(args)} failed in {root}:\n{done.stdout}{done.stderr}")
    return done.stdout


def read_dvc_md5(pointer: str | Path) -> str:
    """The md5 of the tracked output in a `.dvc` pointer file."""
    pointer = Path(pointer)
    if not pointer.is_file():
        raise VersioningError(f"DVC pointer file not found: {pointer}")
    outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or []
    if not outs or "md5" not in outs[0]:
        raise VersioningError(f"{pointer}: no outs[0].md5 entry")
    return str(outs[0]["md5"])


def _pointer(data_dir: Path) -> tuple[Path, Path] | None:
    """The DVC root above `data_dir` and the pointer file `dvc add` writes for it (None outside DVC)."""
    root = find_dvc_root(data_dir)
    return None if root is None else (root, root / f"{data_dir.relative_to(root)}.dvc")


def recorded_data_md5(data_dir: str | Path) -> str | None:
    """The md5 `data_dir`'s DVC pointer holds now (before `track_data` updates it); None if there is none yet."""
    found = _pointer(Path(data_dir).resolve())
    if found is None or not found[1].is_file():
        return None
    try:
        return read_dvc_md5(found[1])
    except VersioningError:  # an unreadable pointer: `dvc add` rewrites it, the md5 counts as new
        return None


def track_data(data_dir: str | Path, push: bool = True) -> dict[str, str]:
    """Version `data_dir` with DVC when it lives in a DVC repo; returns the lineage facts."""
    data_dir = Path(data_dir).resolve()
    found = _pointer(data_dir)
    if found is None:
        return {"data_md5": f"sha256:{digest_path(data_dir)}", "data_versioned_by": "content-digest"}
    root, pointer = found
    _dvc(root, "add", str(data_dir.relative_to(root)))
    facts = {"data_md5": read_dvc_md5(pointer), "data_versioned_by": "dvc", "data_pointer": str(pointer)}
    if push and _dvc(root, "remote", "list").strip():
        _dvc(root, "push", str(pointer.relative_to(root)))
    return facts


def git_commit(path: str | Path = ".", short: bool = False) -> str:
    """The current commit (abbreviated when `short`), with `-dirty` when tracked files have uncommitted changes."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True)

    head = git("rev-parse", *(["--short"] if short else []), "HEAD")
    if head.returncode != 0:  # e.g. in the component image, which records its commit at build time
        return os.environ.get("POSTTRAIN_GIT_COMMIT", "unknown")
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def params_hash(params) -> str:
    payload = params.model_dump(mode="json") if hasattr(params, "model_dump") else params
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
