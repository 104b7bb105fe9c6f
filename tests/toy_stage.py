"""A stage that is not part of the recipe: what a new stage needs is this module and one registry row."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from components.artifacts import DataError
from components.config import StageResult, StrictModel


class Config(StrictModel):
    repeat: int = Field(2, ge=1, description="how often each line is written")


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    source = Path(inputs["words"])
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    lines = [line for line in source.read_text().splitlines() if line]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "words.txt").write_text("".join(f"{line}\n" * cfg.repeat for line in lines))
    return StageResult(stage="toy", outputs={"text": str(out / "words.txt")}, metrics={"lines": float(len(lines) * cfg.repeat)})
