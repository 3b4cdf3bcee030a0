"""Put a finished sweep's report (and its plots) into benchmarks/results/, for BENCHMARKS.md.

    python -m benchmarks.sweep_report SWEEP_DIR NAME     # -> benchmarks/results/NAME.md, NAME-*.png

The sweep folder itself (trial runs, checkpoints, journal) stays out of the repository; its
report.md already names the `aigc sweep` command and the budget it spent. Headings move one
level down, under a title naming the machine and its load now.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from .timing import load_average, machine

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    sweep, name = Path(args[0]), args[1]
    report = sweep / "report.md"
    if not report.is_file():
        print(f"error: {report} does not exist (run the sweep to its end first)", file=sys.stderr)
        return 2
    text = report.read_text(encoding="utf-8")

    def move(m: re.Match) -> str:
        target = f"{name}-{Path(m.group(1)).name}"
        shutil.copyfile(sweep / m.group(1), RESULTS / target)
        return f"]({target})"

    text = re.sub(r"\]\(([\w./-]+\.png)\)", move, text)
    body = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
    head = [f"# Sweep: {name}", "",
            f"Copied from `{sweep}/report.md` by `python -m benchmarks.sweep_report {sweep} {name}`. Machine: "
            + "; ".join(f"{k} {v}" for k, v in machine().items()) + f". Load average when copied: {load_average()}.",
            ""]
    (RESULTS / f"{name}.md").write_text("\n".join(head) + "\n" + body + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / (name + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
