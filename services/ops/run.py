"""``python -m services.ops.run NAME``: one component in the foreground, configured by
``INFOSHARE_*`` variables (what ``infoshare run NAME`` does, without the command's other
groups: a stack's supervisor starts each process this way)."""

from __future__ import annotations

import sys

from services.ops.components import BY_NAME, run_component


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in BY_NAME:
        print(f"usage: python -m services.ops.run {{{'|'.join(BY_NAME)}}}", file=sys.stderr)
        return 2
    run_component(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
