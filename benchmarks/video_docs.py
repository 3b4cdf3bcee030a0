"""The README's filmstrip by class and its example GIFs, from a trained conditional video run.

    python -m benchmarks.video_docs RUN [--name NAME] [--seed 0] [--out docs/video]

Samples one clip of each label (`aigc.load(RUN).sample`, the run's own defaults), writes
OUT/NAME-filmstrip.png (one row per label, frames left to right), OUT/NAME-all.gif (the clips side
by side, playing together) and OUT/NAME-LABEL.gif (one looping GIF per label).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from aigc.files import atomic_write, make_dirs


def main(argv: list[str] | None = None) -> int:
    import aigc
    from aigc.modalities.video import as_uint8, filmstrip, gif_bytes, safe_name, tiled
    from aigc.models.capabilities import is_conditional

    p = argparse.ArgumentParser(prog="python -m benchmarks.video_docs", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--name", help="file name prefix (default: the run folder's name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("docs/video"))
    args = p.parse_args(argv)
    gen = aigc.load(args.run)
    k = gen.model.num_classes if is_conditional(gen.model) else 0
    if not k:
        raise SystemExit(f"error: {args.run} is not a conditional run (its clips have no labels to lay out)")
    video = gen.sample(k, seed=args.seed)  # labels 0..k-1, one clip each
    clips = as_uint8(video.frames)
    name = args.name or args.run.name
    out = make_dirs(args.out)
    atomic_write(out / f"{name}-filmstrip.png", lambda f: filmstrip(clips, video.labels).save(f, "PNG"))
    all_clips = gif_bytes(tiled(clips, min(k, 5)), video.fps, scale=3)
    atomic_write(out / f"{name}-all.gif", lambda f: f.write_bytes(all_clips))
    for clip, label in zip(clips, video.labels, strict=True):
        data = gif_bytes(clip, video.fps)
        atomic_write(out / f"{name}-{safe_name(label)}.gif", lambda f, d=data: f.write_bytes(d))
    print(f"wrote {out / f'{name}-filmstrip.png'}, {name}-all.gif and {k} GIFs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
