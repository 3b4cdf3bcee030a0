"""Assemble BENCHMARKS.md from the tables the benchmark commands wrote into benchmarks/results/.

`python -m benchmarks.collect` after any of: `python -m benchmarks.run`, `python -m benchmarks.step_profile`,
`python -m benchmarks.recipes`, `python -m benchmarks.versus`, `python -m benchmarks.sweep_report`,
`python benchmarks/makemore.py ...`, `python -m benchmarks.memory_soak`, `python -m benchmarks.audio`,
`python -m benchmarks.griffin_lim --floor ...`, `python -m benchmarks.scaling`. Each table names the command
and machine that produced it; this script only puts them in one file.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ORDER = [  # the speed tables first, then text, then memory
    "perf.md",
    "profile.md",
    "recipes.md",
    "recipes-dcgan-variants.md",
    "recipes-fashion-dcgan.md",
    "versus.md",
    "measuring.md",
    "recipes-flow.md",
    "diffusion.md",
    "audio.md",
    "audio-digits-speech.md",
    "griffin-lim-floor.md",
    "video.md",
    "music.md",
    "prompts.md",
    "scaling.md",
    "serve.md",
    "serve-2-workers.md",
    "sweep-fashion-dcgan.md",
    "sweep-names-transformer.md",
    "makemore-transformer-swept.md",
    "makemore-transformer-swept-seed1.md",
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


# What a reader must know about a table that a later change made historical (the table itself
# stays as its command wrote it).
NOTES = {
    "audio.md": "Note: `fsdd-flow` was trained with plain `aigc train fsdd-flow --set data.source=...` before this "
                "command evaluated it (hence no peak RSS, not measured); the two GANs were trained by the command. "
                "Sampling rates are one timing each and moved by up to half between two runs of the command.",
    "audio-digits-speech.md": "Note: `digits-speech` was trained with plain `aigc train digits-speech` before this "
                              "command evaluated it (hence no peak RSS, not measured).",
    "perf.md": "Note: measured before issue 18, on the `fashion-dcgan` recipe of then (3,000 steps, a "
               "discriminator without batch norm, lr 2e-4). Run again, its DCGAN speed rows train the recipe "
               "with the nets its speed reference shares (`model.d_norm=none model.mbstd=0`, see "
               "benchmarks/throughput.py); sections 5 and 6 train the current recipe.",
    "profile.md": "Note: measured before issue 18, on the `fashion-dcgan` recipe of then, whose nets its speed "
                  "reference shares; run again, it profiles the recipe with those nets (`model.d_norm=none "
                  "model.mbstd=0`), not the current recipe's discriminator.",
    "recipes.md": "Note: the `fashion-dcgan` row here is the recipe before issue 18 (3,000 steps, a discriminator "
                  "without batch norm, lr 2e-4). The current recipe is measured in the next tables "
                  "(`recipes-fashion-dcgan.md`, `versus.md`).",
    "recipes-dcgan-variants.md": "Note: these four runs are of the `fashion-dcgan` recipe before issue 18.",
    "makemore-transformer-swept.md": "The `names-transformer` recipe since issue 18: lr 6.3e-3, warmup 500, "
                                     "weight decay 0.026 from `aigc sweep` (below), seed 0 here and seed 1 next. The "
                                     "makemore tables after those two are of the recipe before (lr 2e-3, "
                                     "warmup 200, weight decay 0.01).",
}


def demote(markdown: str) -> str:
    """Each results file's headings one level down, under this file's title."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def main() -> None:
    parts = [INTRO]
    for name in ORDER:
        path = RESULTS / name
        if path.is_file():
            text = re.sub(r"\]\(([\w./-]+\.png)\)", r"](benchmarks/results/\1)",
                          demote(path.read_text(encoding="utf-8")))
            if name in NOTES:  # right under the section's heading
                head, _, rest = text.partition("\n")
                text = f"{head}\n\n*{NOTES[name]}*\n{rest}"
            parts.append(text)
    (ROOT / "BENCHMARKS.md").write_text("\n\n".join(p.strip() for p in parts) + "\n", encoding="utf-8")
    print(f"wrote {ROOT / 'BENCHMARKS.md'} from {len(parts) - 1} result files")


if __name__ == "__main__":
    main()
