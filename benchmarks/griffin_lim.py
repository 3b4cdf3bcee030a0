"""How well fast Griffin-Lim recovers real speech from its magnitude: spectral convergence after 8, 32
and 100 iterations on four FSDD clips, with the STFT of the spectrogram models (n_fft 256, hop 64
at 8 kHz), from the magnitude itself and through the models' 80 dB log picture.

    python -m benchmarks.griffin_lim [--fsdd ../shared/data/fsdd/recordings]
    python -m benchmarks.griffin_lim --floor spoken-digits|wav:DIR [--n 1000]

Deterministic (seeded random phase); prints one line per setting. `--floor SOURCE` measures what the
spectrogram models' way back to sound costs on their own evaluator: the data's real floor (training
clips against the test clips, as `aigc eval --real`) beside the same training clips after the round
trip every specgan/specflow sample takes (80 dB log picture, 32 Griffin-Lim iterations from random
phase), with their labels as the digits asked for. A wav: SOURCE is read with FSDD's name patterns.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from aigc.audio import STFT, fit_length, read_audio, spectral_convergence

CLIPS = ("0_george_0", "5_jackson_3", "9_lucas_7", "3_nicolas_1")


def vocoder_floor(source: str, n: int) -> None:
    from aigc.audio import to_float
    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.metrics import EvalRequest
    from aigc.metrics.audio import audio_feature_net_for, evaluate_audio_real, evaluate_clips

    patterns = {"label_pattern": "{label}_{speaker}_{index}", "split_pattern": "index=0-4"} if source.startswith(
        "wav:") else {}
    data = load_dataset(DataConfig(source=source, sample_rate=8000, seconds=1.0, **patterns))
    quiet = EvalRequest(n=n, echo=lambda m: None)
    feats = audio_feature_net_for(data, echo=print)
    plain = evaluate_audio_real(data, quiet, feats=feats)
    n = plain["n"]  # the floor's own draw of training clips, taken again below
    idx = torch.randperm(len(data.train["x"]), generator=torch.Generator().manual_seed(quiet.seed))[:n]
    stft = STFT(256, 64, frames=128)
    wave = to_float(data.train["x"][idx]).reshape(n, -1)
    back = stft.decode(stft.encode(wave), wave.shape[1], 32, generator=torch.Generator().manual_seed(0))
    trip = evaluate_clips(back, data.train["y"][idx], data, EvalRequest(n=n, floor=False, echo=lambda m: None))
    print(f"{source}: {n} training clips against {trip['n_real']} test clips, features {feats.name}")
    for name, r in (("as recorded", plain), ("through log picture + 32 Griffin-Lim iterations", trip)):
        print(f"  {name:<50} FID {r['fid']:.2f}  IS {r['is']:.2f}  precision {r['precision']:.3f}  "
              f"recall {r['recall']:.3f}  coverage {r['coverage']:.3f}"
              + (f"  label accuracy {r['label_accuracy']:.3f}" if "label_accuracy" in r else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.griffin_lim", description=__doc__.splitlines()[0])
    p.add_argument("--fsdd", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/fsdd/recordings")
    p.add_argument("--floor", metavar="SOURCE", help="the real floor with and without the Griffin-Lim round trip")
    p.add_argument("--n", type=int, default=1000, help="--floor: training clips measured")
    args = p.parse_args(argv)
    if args.floor:
        vocoder_floor(args.floor, args.n)
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
