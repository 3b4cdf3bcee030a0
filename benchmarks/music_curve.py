"""Held-out likelihood of every checkpoint of a music run: where training stops helping.

    python -m benchmarks.music_curve RUN [--split val]

Loads each checkpoint the run kept (its recipe's keep_last) and prints the nats per token, per voice
token and per sixteenth step on the val (or test) pieces, measured as `aigc eval` measures the test
pieces. The recipes' step counts come from this on a longer run, e.g. `aigc train
chorales-transformer --steps 3000 --set train.keep_last=10 --out runs/chorales-3000`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import aigc
    from aigc.data.music import music_splits
    from aigc.metrics.music import likelihood
    from aigc.train.checkpoint import list_checkpoints

    p = argparse.ArgumentParser(prog="python -m benchmarks.music_curve", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--split", choices=("val", "test"), default="val")
    args = p.parse_args(argv)
    first = aigc.load(args.run)
    _, splits, _ = music_splits(first.config.data)
    width = int(first.model.meta["block_size"]) + 1
    print(f"{args.run}: {len(splits[args.split])} {args.split} pieces")
    for ckpt in list_checkpoints(args.run):
        nll = likelihood(aigc.load(args.run, ckpt.name).model, splits[args.split], width)
        print(f"{ckpt.name}  nats/token {nll['nats_per_token']:.4f}  nats/voice token "
              f"{nll['nats_per_voice_token']:.4f}  nats/step {nll['nats_per_step']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
