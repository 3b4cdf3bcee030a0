"""The README's prompt pictures, sounds and clips, from trained conditional runs.

    python -m benchmarks.prompts_docs [--image RUN] [--audio RUN] [--video RUN] [--seed 0] [--out docs/prompts]

For each prompt below, `aigc.load(RUN).sample(n, prompt=...)` as a user calls it: OUT/image-prompts.png
(one row per prompt: the words, the class or mix they matched with its score, 8 samples), OUT/audio-N.wav
(one spoken digit per prompt) and OUT/video-N.gif (clips from a prompt), and OUT/prompts.md listing what
each prompt matched. Runs default to the benchmark runs (see benchmarks.prompts).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from aigc.files import atomic_write, atomic_write_text, make_dirs

from .prompts import RUNS

IMAGE_PROMPTS = ["something warm for my feet in winter", "a summer dress for a garden party", "jeans",
                 "what I wear to go running", "a bag for my laptop", "a cozy knitted jumper",
                 "a long dress + a warm coat", "0.5 a sandal + 0.5 a sneaker"]
AUDIO_PROMPTS = ["say seven", "the number after two", "zero", "cinco"]
VIDEO_PROMPTS = ["a sneaker bouncing around", "a handbag moving across the screen"]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def picture(rows: list[tuple[str, str, object]], scale: int = 2):
    """One row per prompt: its words and match on the left, its samples (float [n, C, H, W]) to the right."""
    from PIL import Image, ImageDraw

    from aigc.io import to_pil

    tiles = [to_pil(x, len(x)) for _, _, x in rows]
    tiles = [t.resize((t.width * scale, t.height * scale), Image.NEAREST) for t in tiles]
    left, gap = 330, 6
    width = left + max(t.width for t in tiles)
    height = sum(t.height + gap for t in tiles) + gap
    out = Image.new("RGB", (width, height), "white")
    draw, big, small = ImageDraw.Draw(out), _font(15), _font(12)
    y = gap
    for (words, matched, _), tile in zip(rows, tiles, strict=True):
        out.paste(tile.convert("RGB"), (left, y))
        draw.text((8, y + tile.height // 2 - 18), f"\u201c{words}\u201d", fill=(20, 20, 20), font=big)
        draw.text((8, y + tile.height // 2 + 2), f"-> {matched}", fill=(36, 87, 197), font=small)
        y += tile.height + gap
    return out


def matched(answer) -> str:
    from aigc.prompts import Mix

    if isinstance(answer.label, Mix):
        return "mix: " + " + ".join(f"{w:.2f} {name}" for name, w in answer.label.weights)
    name, score = answer.parts[0].best
    return f"{name} (score {score:.2f})"


def main(argv: list[str] | None = None) -> int:
    import aigc
    from aigc.audio import wav_bytes

    p = argparse.ArgumentParser(prog="python -m benchmarks.prompts_docs", description=__doc__.splitlines()[0])
    for kind, (_, run) in RUNS.items():
        p.add_argument(f"--{kind}", type=Path, default=run)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("docs/prompts"))
    args = p.parse_args(argv)
    out = make_dirs(args.out)
    lines = ["# What each prompt matched", "", f"Made by `python -m benchmarks.prompts_docs` (seed {args.seed}).", ""]

    gen = aigc.load(args.image)
    rows = []
    for words in IMAGE_PROMPTS:
        answer = gen.match(words)
        rows.append((words, matched(answer), gen.sample(8, seed=args.seed, prompt=words)))
        lines.append(f"- image (`{args.image}`): {answer.summary()}")
    atomic_write(out / "image-prompts.png", lambda f: picture(rows).save(f, "PNG"))

    gen = aigc.load(args.audio)
    for i, words in enumerate(AUDIO_PROMPTS):
        answer = gen.match(words)
        data = wav_bytes(gen.sample(1, seed=args.seed, prompt=words).wave[0], gen.model.meta["sample_rate"])
        atomic_write(out / f"audio-{i}.wav", lambda f, d=data: f.write_bytes(d))
        lines.append(f"- audio (`{args.audio}`), [audio-{i}.wav](audio-{i}.wav): {answer.summary()}")

    from aigc.modalities.video import as_uint8, gif_bytes, tiled

    gen = aigc.load(args.video)
    for i, words in enumerate(VIDEO_PROMPTS):
        answer = gen.match(words)
        video = gen.sample(4, seed=args.seed, prompt=words)
        data = gif_bytes(tiled(as_uint8(video.frames), 4), video.fps, scale=3)
        atomic_write(out / f"video-{i}.gif", lambda f, d=data: f.write_bytes(d))
        lines.append(f"- video (`{args.video}`), [video-{i}.gif](video-{i}.gif): {answer.summary()}")
    atomic_write_text(out / "prompts.md", "\n".join(lines) + "\n")
    print(f"wrote {out}/image-prompts.png, {len(AUDIO_PROMPTS)} WAVs, {len(VIDEO_PROMPTS)} GIFs and prompts.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
