"""Assemble BENCHMARKS.md from the tables the benchmark commands wrote into benchmarks/results/.

`python -m benchmarks.collect` after any of: `python -m benchmarks.run`, `python -m benchmarks.step_profile`,
`python -m benchmarks.recipes`,
`python benchmarks/makemore.py ...`, `python -m benchmarks.memory_soak`. Each table names the command
and machine that produced it; this script only puts them in one file.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ORDER = [  # the speed tables first, then text, then memory
    "perf.md",
    "profile.md",
    "recipes.md",
    "recipes-dcgan-variants.md",
    "makemore-transformer-quiet.md",
    "makemore.md",
    "makemore-transformer-dropout0.md",
    "memory.md",
]
INTRO = """# Benchmarks

Measured comparisons, not tests: each section below was written by the command it names, on the
machine it describes (2 cores, no GPU). A load average above about 2 means other jobs shared the
CPU while it ran: read the ratios of interleaved contenders, not the absolute rates, from such
tables. Rebuild this file with `python -m benchmarks.collect`.
"""


def demote(markdown: str) -> str:
    """Each results file's headings one level down, under this file's title."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def main() -> None:
    parts = [INTRO]
    for name in ORDER:
        path = RESULTS / name
        if path.is_file():
            parts.append(demote(path.read_text(encoding="utf-8")).replace("](perf-fid.png)",
                                                                         "](benchmarks/results/perf-fid.png)"))
    (ROOT / "BENCHMARKS.md").write_text("\n\n".join(p.strip() for p in parts) + "\n", encoding="utf-8")
    print(f"wrote {ROOT / 'BENCHMARKS.md'} from {len(parts) - 1} result files")


if __name__ == "__main__":
    main()
