"""How well fast Griffin-Lim recovers real speech from its magnitude: spectral convergence after 8, 32
and 100 iterations on four FSDD clips, with the STFT of the spectrogram models (n_fft 256, hop 64
at 8 kHz), from the magnitude itself and through the models' 80 dB log picture.

    python -m benchmarks.griffin_lim [--fsdd ../shared/data/fsdd/recordings]
    python -m benchmarks.griffin_lim --floor spoken-digits|wav:DIR [--n 1000]

Deterministic (seeded random phase); prints one line per setting. `--floor SOURCE` (repeatable;
writes benchmarks/results/griffin-lim-floor.md + .json) measures what the
spectrogram models' way back to sound costs on their own evaluator: the data's real floor (training
clips against the test clips, as `aigc eval --real`) beside the same training clips after the round
trip every specgan/specflow sample takes (80 dB log picture, 32 Griffin-Lim iterations from random
phase), with their labels as the digits asked for. A wav: SOURCE is read with FSDD's name patterns.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc.audio import STFT, fit_length, read_audio, spectral_convergence

from .recipes import run_info, write_rows
from .timing import load_average, results_header

RESULTS = Path(__file__).parent / "results"

CLIPS = ("0_george_0", "5_jackson_3", "9_lucas_7", "3_nicolas_1")


def vocoder_floor(source: str, n: int) -> list[dict[str, Any]]:
    from aigc.audio import to_float
    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.metrics import EvalRequest
    from aigc.metrics.audio import evaluate_clips, floor_indices

    patterns = {"label_pattern": "{label}_{speaker}_{index}", "split_pattern": "index=0-4"} if source.startswith(
        "wav:") else {}
    data = load_dataset(DataConfig(source=source, sample_rate=8000, seconds=1.0, **patterns))
    request = EvalRequest(n=n, echo=print)  # says only whether a digit network had to be trained first
    idx = floor_indices(data, request)  # the training clips the floor measures
    stft = STFT(256, 64, frames=128)
    wave = to_float(data.train["x"][idx]).reshape(len(idx), -1)
    back = stft.decode(stft.encode(wave), wave.shape[1], 32, generator=torch.Generator().manual_seed(0))
    trip = evaluate_clips(back, data.train["y"][idx], data, request)  # with the floor of the same clips
    plain, n = trip["floor"], len(idx)
    return [{"source": source, "what": what, "n": n, "n_real": trip["n_real"], "features": trip["features"]["name"],
             **{k: r[k] for k in ("fid", "is", "precision", "recall", "coverage")},
             "label_accuracy": r.get("label_accuracy")}
            for what, r in (("as recorded", plain), ("log picture + 32 Griffin-Lim iterations", trip))]


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    out = results_header("What the way back to sound costs: the real floor through Griffin-Lim", info,
                         f"{info['seconds'] / 60:.0f} min") + [
        "Each data source's real floor (n training clips against its test clips, on the digit network "
        "`aigc eval` uses for it), beside the same clips after the round trip every specgan/specflow sample "
        "takes: the models' 80 dB log picture (n_fft 256, hop 64, Nyquist bin dropped), then 32 fast "
        "Griffin-Lim iterations from random phase. Label accuracy: the clips' own labels as the digit asked for.",
        "", "| data | clips | FID ↓ | IS | precision | recall | coverage | label accuracy |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        acc = "—" if r["label_accuracy"] is None else f"{r['label_accuracy']:.3f}"
        out.append(f"| `{r['source']}` | {r['what']} ({r['n']:,} vs {r['n_real']:,}) | {r['fid']:.2f} | "
                   f"{r['is']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['coverage']:.3f} | {acc} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.griffin_lim", description=__doc__.splitlines()[0])
    p.add_argument("--fsdd", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/fsdd/recordings")
    p.add_argument("--floor", metavar="SOURCE", action="append",
                   help="the real floor with and without the Griffin-Lim round trip (repeatable)")
    p.add_argument("--n", type=int, default=1000, help="--floor: training clips measured")
    p.add_argument("--out", type=Path, default=RESULTS / "griffin-lim-floor.md", help="--floor: the table")
    args = p.parse_args(argv)
    if args.floor:
        tic, load_start = time.perf_counter(), load_average()
        rows = [row for source in args.floor for row in vocoder_floor(source, args.n)]
        info = run_info("griffin_lim", argv, tic, load_start, n=args.n)
        info["command"] = info["command"].replace(str(Path(__file__).resolve().parents[2]), "..")
        write_rows(args.out, rows, info, render)
        print(render(rows, info).split("\n\n")[-1])
        return 0
    stft = STFT(256, 64)
    waves = []
    for name in CLIPS:
        x, _ = read_audio(args.fsdd / f"{name}.wav", 8000)
        waves.append(torch.from_numpy(fit_length(x / np.abs(x).max(), 8000)))
    wave = torch.stack(waves)
    mag = stft.magnitude(wave)
    for iters in (8, 32, 100):
        sc = spectral_convergence(mag, stft.griffin_lim(mag, 8000, iters=iters, generator=torch.Generator().manual_seed(0)),
                                  stft)
        print(f"magnitude -> {iters:3d} iterations: spectral convergence {sc:.3f}")
    back = stft.decode(stft.encode(wave), 8000, iters=32, generator=torch.Generator().manual_seed(0))
    print(f"log picture (80 dB floor, Nyquist bin dropped) -> 32 iterations: "
          f"{spectral_convergence(mag[:, :128], back, stft):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
