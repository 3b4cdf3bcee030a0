"""The README's piano rolls and its example WAVs and MIDI files, from a trained music run.

    python -m benchmarks.music_docs RUN [--name NAME] [--seed 0] [--rate 11025] [--out docs/music]

Samples, with the run's own defaults and one seed: three pieces of 8 bars (as `aigc sample RUN --n 3`),
one continuing the first 2 bars of a test piece (`--prompt-bars 2`) and one in D major (`--key D`);
writes OUT/NAME-pianorolls.png (the five, one under the other) and OUT/NAME-N.wav/.mid for each
(WAVs at --rate Hz, mono, to keep the repository small; `aigc sample` writes 22,050 Hz).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from aigc.files import atomic_write, make_dirs


def main(argv: list[str] | None = None) -> int:
    import aigc
    from aigc.audio import wav_bytes
    from aigc.modalities.music import rolls_grid
    from aigc.score import midi_bytes, render

    p = argparse.ArgumentParser(prog="python -m benchmarks.music_docs", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--name", help="file name prefix (default: the run folder's name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=int, default=11_025)
    p.add_argument("--out", type=Path, default=Path("docs/music"))
    args = p.parse_args(argv)
    gen = aigc.load(args.run)
    pieces = gen.sample(3, seed=args.seed, bars=8)
    prompted = gen.sample(1, seed=args.seed, bars=8, prompt_bars=2)[0]
    in_d = gen.sample(1, seed=args.seed, bars=8, key="D")[0]
    named = [(f"{i + 1}", s) for i, s in enumerate(pieces)] + [("prompt", prompted), ("D-major", in_d)]
    for label, s in named:
        s.name = label if label != "prompt" else f"prompt: first 2 bars of {s.facts['prompt']}"
    name = args.name or args.run.name
    out = make_dirs(args.out)
    atomic_write(out / f"{name}-pianorolls.png", lambda f: rolls_grid([s for _, s in named]).save(f, "PNG"))
    for label, s in named:
        wave, how = render(s, args.rate)
        data = wav_bytes(wave, args.rate)
        atomic_write(out / f"{name}-{label}.wav", lambda f, d=data: f.write_bytes(d))
        atomic_write(out / f"{name}-{label}.mid", lambda f, s=s: f.write_bytes(midi_bytes(s)))
        print(f"{name}-{label}: {s.key}, {len(s.bars)} bars, sound by {how}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
