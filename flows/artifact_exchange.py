"""Stage artifacts through S3-compatible object storage, for Jobs that share no volume.

With `execution.exchange_uri` set (e.g. `s3://posttrain-artifacts/exchange`), a stage dispatched
to another Job and the orchestrator meet in object storage instead of on a ReadWriteMany volume:

    orchestrator                     object storage                        stage Job
    publish_inputs  ──▶  <uri>/inputs/<digest>/<file or folder>   ──▶  fetch_inputs (scratch)
    fetch_outputs   ◀──  <uri>/artifacts/<stage>/<key>/...         ◀──  publish_outputs

Any fsspec URL works; `s3://` goes through s3fs, which takes credentials and the endpoint from
the usual AWS variables (AWS_ENDPOINT_URL for MinIO or another S3-compatible store). Inputs are
content-addressed, so an unchanged dataset or model is uploaded once; an input that is itself a
stage output fetched from the exchange is referenced where it already is, not uploaded again.
A folder is complete only once its marker is there (`_COMPLETE` for inputs, `result.json` for
outputs, each written last), so a Job killed halfway never passes for a finished one.

Paths in a stage's `result.json` are the orchestrator's: the stage Job rewrites its scratch
paths before publishing, so the result reads the same on a shared volume or through storage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import fsspec

from components.artifacts import write_json
from components.config import StageResult

COMPLETE_MARKER = "_COMPLETE"  # written last into an uploaded folder (inputs, checkpoints)
RESULT_FILE = "result.json"
ORIGIN_FILE = ".exchange-origin"  # in a fetched output folder: the URI it came from


class ExchangeError(RuntimeError):
    """Object storage could not be reached, or holds no (complete) artifact where one must be."""


class ArtifactExchange:
    """One exchange root (`execution.exchange_uri`) and the file system behind it."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        try:
            # A fresh client: credentials and endpoint are read from the environment now.
            self.fs, self.root = fsspec.core.url_to_fs(self.uri, skip_instance_cache=True)
        except (ImportError, ValueError) as error:
            raise ExchangeError(f"execution.exchange_uri {uri!r}: {error}") from error

    def url(self, path: str) -> str:
        """A full URL (with protocol) for a path on this file system."""
        return self.fs.unstrip_protocol(path)

    def fs_path(self, url: str) -> str:
        """A URL as the file system's own path (no protocol), as its calls take it."""
        return self.fs._strip_protocol(url)

    def output_uri(self, relative_out_dir: str) -> str:
        return f"{self.uri}/artifacts/{relative_out_dir.strip('/')}"

    # ---------------------------------------------------------------- orchestrator side

    def publish_inputs(self, inputs: dict[str, str], digests: dict[str, str]) -> dict[str, str]:
        """Input name -> URL for the stage Job; hub ids (no such local path) pass through unchanged."""
        return {name: self._publish_input(path, digests[name]) for name, path in inputs.items()}

    def _publish_input(self, path: str, digest: str) -> str:
        local = Path(path)
        if not local.exists():
            return path  # a hub id: the Job loads it by name
        already_there = _fetched_from(local)
        if already_there:
            return already_there
        folder = f"{self.root}/inputs/{digest.removeprefix('id:')[:32]}"
        target = f"{folder}/{local.name}"
        if not self.call(self.fs.exists, f"{folder}/{COMPLETE_MARKER}"):
            self.call(self.fs.makedirs, folder, exist_ok=True)  # object stores have no folders; file:// does
            self.call(self.fs.put, str(local), target, recursive=local.is_dir())
            self.write_bytes(f"{folder}/{COMPLETE_MARKER}", b"")
        return self.url(target)

    def has_outputs(self, remote_out: str) -> bool:
        fs_path = self.fs_path(remote_out)
        return bool(self.call(self.fs.exists, f"{fs_path}/{RESULT_FILE}"))

    def fetch_outputs(self, remote_out: str, out_dir: str) -> StageResult:
        """Download a stage's published outputs into `out_dir` (whole, through a staging folder); its result."""
        fs_path = self.fs_path(remote_out)
        if not self.has_outputs(remote_out):
            raise ExchangeError(f"{remote_out}: no {RESULT_FILE}, so the stage did not finish publishing its outputs")
        local = Path(out_dir)
        staging = local.with_name(local.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.call(self.fs.get, f"{fs_path}/", f"{staging}/", recursive=True)
        (staging / ORIGIN_FILE).write_text(self.url(fs_path))
        # Swap in whole: a crash mid-download leaves `.partial`, never a half-filled out_dir.
        shutil.rmtree(local, ignore_errors=True)
        staging.rename(local)
        return read_result(local)

    # ---------------------------------------------------------------- stage Job side

    def fetch_inputs(self, inputs: dict[str, str], scratch: Path) -> dict[str, str]:
        """URL -> a local copy under `scratch`; anything else (a hub id) passes through."""
        local_inputs = {}
        for name, url in inputs.items():
            protocol = url.split("://", 1)[0] if "://" in url else None
            if protocol not in _protocols(self.fs):
                local_inputs[name] = url
                continue
            fs_path = self.fs_path(url)
            target = scratch / "inputs" / hashlib.sha256(url.encode()).hexdigest()[:16] / Path(fs_path).name
            if not target.exists():
                if not self.call(self.fs.exists, fs_path):
                    raise ExchangeError(f"input {name!r}: {url} does not exist")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.call(self.fs.get, fs_path, str(target), recursive=self.call(self.fs.isdir, fs_path))
            local_inputs[name] = str(target)
        return local_inputs

    def publish_outputs(self, local_out: Path, remote_out: str, key: str, result: StageResult, path_map: dict[str, str]) -> None:
        """Upload the stage's outputs, then its result with the orchestrator's paths, last."""
        fs_path = self.fs_path(remote_out)
        if self.call(self.fs.exists, fs_path):
            self.call(self.fs.rm, fs_path, recursive=True)  # a crashed earlier attempt's leftovers
        self.call(self.fs.makedirs, fs_path, exist_ok=True)
        self.call(self.fs.put, f"{local_out}/", f"{fs_path}/", recursive=True)
        record = result_record(key, relocate(result, path_map))
        self.write_bytes(f"{fs_path}/{RESULT_FILE}", json.dumps(record, indent=2).encode())

    def write_bytes(self, fs_path: str, data: bytes) -> None:
        self.call(self.fs.makedirs, fs_path.rsplit("/", 1)[0], exist_ok=True)
        self.call(self.fs.pipe_file, fs_path, data)

    def call(self, operation, *args, **kwargs):
        """Every storage call: whatever the client raises (no credentials, no endpoint, no bucket)
        comes out as an ExchangeError naming the exchange."""
        try:
            return operation(*args, **kwargs)
        except Exception as error:
            raise ExchangeError(f"{self.uri}: {type(error).__name__}: {error}") from error


def _protocols(fs) -> set[str]:
    protocol = fs.protocol
    return set(protocol) if isinstance(protocol, tuple | list) else {protocol}


def _fetched_from(path: Path) -> str | None:
    """The exchange URL of `path` if it lies in an output folder fetched from the exchange."""
    for folder in [path, *path.parents]:
        origin = folder / ORIGIN_FILE
        if origin.is_file():
            relative = path.relative_to(folder).as_posix()
            return origin.read_text().strip() + ("" if relative == "." else f"/{relative}")
    return None


def relocate(result: StageResult, path_map: dict[str, str]) -> StageResult:
    """Rewrite output paths that start with a key of `path_map` (longest first) to its value."""
    prefixes = sorted(path_map, key=len, reverse=True)

    def moved(path: str) -> str:
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return path_map[prefix] + path[len(prefix.rstrip("/")) :]
        return path

    return result.model_copy(update={"outputs": {name: moved(path) for name, path in result.outputs.items()}})


def read_result(out_dir: str | Path) -> StageResult:
    data = json.loads((Path(out_dir) / RESULT_FILE).read_text())
    return StageResult.model_validate({k: v for k, v in data.items() if k != "key"})


def write_result(out_dir: str | Path, key: str, result: StageResult) -> None:
    write_json(Path(out_dir) / RESULT_FILE, result_record(key, result))


def result_record(key: str, result: StageResult) -> dict:
    """What `result.json` holds: the stage's result and the cache key it was computed for."""
    return {"key": key, **result.model_dump(mode="json")}
