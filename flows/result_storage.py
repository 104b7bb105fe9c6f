"""Keep Prefect's task results (the stage cache) in object storage instead of a pod's disk.

A stage task's cached result is what lets a re-run skip it. On the local profile it lives under
PREFECT_HOME; on a cluster the orchestrator pod is new each run, so its results must outlive it.
This saves a `remote-file-system` block pointing at S3 (or any fsspec URL); pods that run the
flow name it in `PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK=remote-file-system/<name>` (the
`post-training` deployment of infra/prefect/prefect.cluster.yaml does). Credentials and endpoint
come from the pods' AWS_* variables, as for `execution.exchange_uri`: none is stored in the block.

    python -m flows.result_storage s3://posttrain-artifacts/prefect-results [--name posttrain-results]
"""

from __future__ import annotations

import argparse
import re
import sys

from fsspec.registry import known_implementations

BLOCK_NAME = "posttrain-results"


def save_result_storage(basepath: str, name: str = BLOCK_NAME) -> str:
    """Save (or overwrite) the block; returns the value for PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK."""
    from prefect.filesystems import RemoteFileSystem

    protocol = basepath.split("://", 1)[0] if "://" in basepath else ""
    if protocol not in known_implementations or protocol in ("file", "local", "memory"):
        raise ValueError(f"{basepath!r}: result storage must be a shared store URL such as s3://bucket/prefix (got protocol {protocol!r})")
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"block name {name!r}: use lowercase letters, digits and dashes")
    RemoteFileSystem(basepath=basepath.rstrip("/")).save(name, overwrite=True)
    return f"{RemoteFileSystem.get_block_type_slug()}/{name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("basepath", help="where results go, e.g. s3://posttrain-artifacts/prefect-results")
    parser.add_argument("--name", default=BLOCK_NAME, help=f"block name (default {BLOCK_NAME})")
    args = parser.parse_args(argv)
    try:
        slug = save_result_storage(args.basepath, args.name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"saved; flow-run pods need PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK={slug}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
