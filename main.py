"""Netweaver's entry point.

    python main.py [PROJECT]                       open the app (with a project or model file)
    python main.py --screenshot OUT.png [PROJECT]  render the window offscreen to a PNG and exit
    python main.py summary|train|export ...        headless commands (see `python main.py export --help`)
"""

from __future__ import annotations

import sys

HEADLESS = ("summary", "train", "export")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HEADLESS:
        from app.cli import main as cli_main

        return cli_main(argv)
    from app.launcher import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
