"""Mirror a dispatched stage's training checkpoints to object storage, so a new Job resumes.

Through the artifact exchange a stage Job trains in local scratch; if the pod dies (pre-empted
GPU node, OOM kill) its checkpoints would die with it and a retried Job would start at step 0.
While the stage runs, a background thread copies the newest *complete* checkpoint of every
`checkpoints/` folder under the stage's output to `<remote_out>.checkpoints/` (HF's Trainer
writes `trainer_state.json` last, so a checkpoint holding it is whole; the copy is marked
complete only after it is uploaded). A Job starting the same stage (same cache key) first
restores them, and the stages that resume (SFT, GRPO) continue from there. When the stage
succeeds its remote checkpoints are deleted: the published model supersedes them.
"""

from __future__ import annotations

import logging
import re
import threading
from contextlib import contextmanager
from pathlib import Path

from flows.artifact_exchange import COMPLETE_MARKER, ArtifactExchange, ExchangeError

STATE_FILE = "trainer_state.json"  # the last file HF's Trainer writes into a checkpoint

log = logging.getLogger(__name__)


class CheckpointMirror:
    def __init__(self, exchange: ArtifactExchange, local_out: Path, remote_out: str):
        self.exchange, self.fs = exchange, exchange.fs
        self.local_out = local_out
        self.remote = exchange.fs_path(remote_out).rstrip("/") + ".checkpoints"
        self.uploaded: dict[str, str] = {}  # checkpoints folder (relative) -> newest checkpoint uploaded

    def restore(self) -> list[str]:
        """Download every completely uploaded checkpoint into the local output folder."""
        if not self.exchange.call(self.fs.exists, self.remote):
            return []
        markers = [p for p in self.exchange.call(self.fs.find, self.remote) if p.endswith(f"/{COMPLETE_MARKER}")]
        restored = []
        for marker in markers:
            remote_checkpoint = marker.rsplit("/", 1)[0]
            relative = remote_checkpoint[len(self.remote) + 1 :]
            target = self.local_out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self.exchange.call(self.fs.get, f"{remote_checkpoint}/", f"{target}/", recursive=True)
            (target / COMPLETE_MARKER).unlink(missing_ok=True)
            folder, name = relative.rsplit("/", 1)
            self.uploaded[folder] = name  # already there: no need to send it back
            restored.append(relative)
        return sorted(restored)

    def sync(self) -> None:
        """Upload the newest complete checkpoint of each checkpoints folder, if not yet there."""
        for folder in sorted(self.local_out.rglob("checkpoints")):
            newest = _newest_complete(folder)
            relative = folder.relative_to(self.local_out).as_posix()
            if newest is None or self.uploaded.get(relative) == newest.name:
                continue
            target = f"{self.remote}/{relative}/{newest.name}"
            self.exchange.call(self.fs.put, f"{newest}/", f"{target}/", recursive=True)
            self.exchange.write_bytes(f"{target}/{COMPLETE_MARKER}", b"")
            self._drop_older(f"{self.remote}/{relative}", keep=newest.name)
            self.uploaded[relative] = newest.name
            log.info("checkpoint %s/%s mirrored to %s", relative, newest.name, target)

    def clear(self) -> None:
        if self.exchange.call(self.fs.exists, self.remote):
            self.exchange.call(self.fs.rm, self.remote, recursive=True)

    @contextmanager
    def running(self, interval_seconds: float):
        """Sync every `interval_seconds` while the block runs, and once more if it fails."""
        stop = threading.Event()

        def loop():
            while not stop.wait(interval_seconds):
                self._sync_quietly()

        thread = threading.Thread(target=loop, name="checkpoint-mirror", daemon=True)
        thread.start()
        try:
            yield self
        except BaseException:
            stop.set()
            thread.join()
            self._sync_quietly()  # a failed stage leaves its last checkpoint for the retry
            raise
        stop.set()
        thread.join()

    def _sync_quietly(self) -> None:
        # Never fail the training for a mirror hiccup (the Trainer may rotate a checkpoint away
        # mid-upload): the next round tries again.
        try:
            self.sync()
        except (ExchangeError, OSError) as error:
            log.warning("checkpoint mirror: %s (retrying next round)", error)

    def _drop_older(self, remote_folder: str, keep: str) -> None:
        for path in self.exchange.call(self.fs.ls, remote_folder, detail=False):
            if path.rstrip("/").rsplit("/", 1)[-1] != keep:
                self.exchange.call(self.fs.rm, path, recursive=True)


def _newest_complete(folder: Path) -> Path | None:
    complete = [d for d in folder.glob("checkpoint-*") if re.fullmatch(r"checkpoint-\d+", d.name) and (d / STATE_FILE).is_file()]
    return max(complete, key=lambda d: int(d.name.split("-")[1]), default=None)
