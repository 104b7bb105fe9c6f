"""`posttrain`: one command for the things users do by hand.

posttrain validate PATH [--kind sft|prefs|rl|eval|probe|pretrain]   check a dataset file or folder
posttrain data|base|sft|reward-model|grpo|rejection-sampling|alignment|distill|evaluate ...
                                                                      run one stage (as a container would)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "validate": "components.validate",
    "data": "components.data",
    "base": "components.base",
    "sft": "components.sft",
    "reward-model": "components.reward_model",
    "grpo": "components.grpo",
    "rejection-sampling": "components.rejection_sampling",
    "alignment": "components.alignment",
    "distill": "components.distill",
    "evaluate": "components.evaluate",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"posttrain: unknown command {argv[0]!r}", file=sys.stderr)
        print(__doc__, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    raise SystemExit(main())
