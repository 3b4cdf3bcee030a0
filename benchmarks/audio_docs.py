"""The README's spectrogram grid by digit and its example WAVs, from a trained conditional audio run.

    python -m benchmarks.audio_docs RUN [--name NAME] [--rows 3] [--seed 0] [--out docs/audio]

Samples ROWS clips of each label (`aigc.load(RUN).sample`, the run's own defaults), writes
OUT/NAME-spectrograms.png (one column per label, named at its top) and the first row as
OUT/NAME-LABEL.wav (one 16-bit WAV per label).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from aigc.files import atomic_write, make_dirs


def main(argv: list[str] | None = None) -> int:
    import aigc
    from aigc.audio import wav_bytes
    from aigc.modalities.audio import spectrogram_grid
    from aigc.models.capabilities import is_conditional

    p = argparse.ArgumentParser(prog="python -m benchmarks.audio_docs", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--name", help="file name prefix (default: the run folder's name)")
    p.add_argument("--rows", type=int, default=3, help="clips per label in the grid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("docs/audio"))
    args = p.parse_args(argv)
    gen = aigc.load(args.run)
    k = gen.model.num_classes if is_conditional(gen.model) else 0
    if not k:
        raise SystemExit(f"error: {args.run} is not a conditional run (its samples have no labels to lay out)")
    clips = gen.sample(args.rows * k, seed=args.seed)  # labels cycle 0..k-1: one column per label
    name = args.name or args.run.name
    out = make_dirs(args.out)
    atomic_write(out / f"{name}-spectrograms.png", lambda f: spectrogram_grid(clips, k).save(f, "PNG"))
    for i in range(k):
        data = wav_bytes(clips.wave[i], clips.rate)
        atomic_write(out / f"{name}-{clips.labels[i]}.wav", lambda f, d=data: f.write_bytes(d))
    print(f"wrote {out / f'{name}-spectrograms.png'} and {k} WAVs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
