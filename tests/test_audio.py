"""Audio: the loader (resampling against a reference, labels and splits from names, bad files), the
STFT + Griffin-Lim round trip on real speech, and a spectrogram GAN on the trainer."""
from __future__ import annotations

import io
import json
import re
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

sf = pytest.importorskip("soundfile")

import aigc  # noqa: E402
from aigc.audio import STFT, fit_length, read_audio, resample, spectral_convergence, to_float  # noqa: E402
from aigc.cli import main  # noqa: E402
from aigc.config import DataConfig, load_config  # noqa: E402
from aigc.data import load_dataset  # noqa: E402
from aigc.data.audio import name_fields, split_rule  # noqa: E402
from aigc.errors import ConfigError, DataError  # noqa: E402
from aigc.train import train  # noqa: E402
from aigc.train.checkpoint import list_checkpoints  # noqa: E402

from .conftest import SHARED  # noqa: E402

FSDD = SHARED / "fsdd" / "recordings"
needs_fsdd = pytest.mark.skipif(not FSDD.is_dir(), reason="needs ../shared/data/fsdd (tests and benchmarks only)")


def sine(freq: float, rate: int, seconds: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def test_resampling_matches_the_signal_sampled_at_the_new_rate():
    """A 440 Hz tone recorded at 44.1 kHz and resampled to 8 kHz is the same tone sampled at 8 kHz
    (away from the filter's edges), and a tone above the new Nyquist frequency is filtered out."""
    got = resample(sine(440, 44_100, 1.0), 44_100, 8000)
    want = sine(440, 8000, 1.0)
    assert len(got) == 8000
    assert np.abs(got[200:-200] - want[200:-200]).max() < 5e-3
    above = resample(sine(5000, 44_100, 1.0), 44_100, 8000)  # 5 kHz > 4 kHz Nyquist: must not alias to 3 kHz
    assert np.sqrt(np.mean(above[200:-200] ** 2)) < 0.01 * np.sqrt(np.mean(want ** 2))
    assert np.array_equal(resample(want, 8000, 8000), want)


def test_clips_are_cut_around_their_loudest_part_or_padded():
    x = np.zeros(1000, dtype=np.float32)
    x[700:760] = 1.0
    cut = fit_length(x, 100)
    assert len(cut) == 100 and cut.sum() == 60  # the whole burst kept
    padded = fit_length(np.ones(10, dtype=np.float32), 20)
    assert len(padded) == 20 and padded.sum() == 10 and padded[0] == 0 and padded[-1] == 0


def test_name_patterns_and_split_rules():
    m = name_fields("{label}_{speaker}_{index}").match("7_george_49")
    assert m.groupdict() == {"label": "7", "speaker": "george", "index": "49"}
    assert name_fields("{speaker}-{label}").match("a-b-c").groupdict() == {"speaker": "a", "label": "b-c"}
    assert split_rule("index=0-4") == ("index", range(0, 5))
    assert split_rule("speaker=theo, lucas") == ("speaker", {"theo", "lucas"})
    for bad, words in (("{speaker}_{index}", "no {label} field"), ("{label}_{label}", "names a field twice")):
        with pytest.raises(ConfigError, match=words):
            name_fields(bad)
    with pytest.raises(ConfigError, match="is not FIELD=LO-HI"):
        split_rule("index")


def fsdd_subset(tmp_path, indices=range(0, 8), speakers=("george", "jackson", "lucas")):
    folder = tmp_path / "fsdd"
    folder.mkdir()
    for digit in range(10):
        for sp in speakers:
            for i in indices:
                shutil.copy(FSDD / f"{digit}_{sp}_{i}.wav", folder)
    return folder


@needs_fsdd
def test_a_wav_folder_loads_with_labels_and_split_from_the_file_names(tmp_path):
    folder = fsdd_subset(tmp_path)
    cfg = DataConfig(source=f"wav:{folder}", label_pattern="{label}_{speaker}_{index}", split_pattern="index=0-4",
                     sample_rate=8000, seconds=1.0)
    ds = load_dataset(cfg)
    assert ds.modality == "audio" and ds.meta["class_names"] == [str(d) for d in range(10)]
    assert ds.train["x"].dtype == torch.int16 and ds.train["x"].shape == (10 * 3 * 3, 1, 8000)
    assert ds.test["x"].shape == (10 * 3 * 5, 1, 8000)  # indices 0-4 of every digit and speaker
    assert sorted(ds.test["y"].bincount().tolist()) == [15] * 10
    assert ds.meta["sample_rate"] == 8000 and ds.meta["samples"] == 8000 and ds.meta["skipped"] == []
    assert ds.meta["converted"]["rate 8000"] == 240 and ds.meta["converted"]["padded"] > 200
    peak = ds.train["x"].abs().amax(dim=(1, 2))
    assert (peak >= 31000).all()  # every clip peak-normalised (to 0.95 of full scale)
    x, facts = read_audio(FSDD / "3_george_0.wav", 16_000)  # the same file at another rate
    assert facts["rate"] == 8000 and abs(len(x) - 2 * facts["frames"]) <= 1


def test_bad_files_are_converted_counted_or_skipped_by_name(tmp_path):
    folder = tmp_path / "clips"
    for label in ("yes", "no"):
        (folder / label).mkdir(parents=True)
        for i in range(12):
            sf.write(folder / label / f"{i}.wav", sine(300 + 50 * i, 8000, 0.5), 8000, subtype="PCM_16")
    stereo = np.stack([sine(500, 44_100, 0.5), sine(700, 44_100, 0.5)], 1)
    sf.write(folder / "yes" / "stereo24.wav", stereo, 44_100, subtype="PCM_24")  # converted and counted
    sf.write(folder / "no" / "silent.wav", np.zeros(4000, dtype=np.float32), 8000)
    (folder / "no" / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (folder / "no" / "empty.wav").write_bytes(b"")
    ds = load_dataset(DataConfig(source=f"wav:{folder}", test_fraction=0.2))
    assert ds.meta["class_names"] == ["no", "yes"] and len(ds.train["x"]) + len(ds.test["x"]) == 26
    assert {s.split(":")[0].rsplit("/", 1)[-1] for s in ds.meta["skipped"]} == {"corrupt.wav", "empty.wav"}
    conv = ds.meta["converted"]
    assert conv["rate 44100"] == 1 and conv["2 channels"] == 1 and conv["PCM_24"] == 1 and conv["silent"] == 1

    for i in range(6):  # now more than 10% of the folder is unreadable: one line, no dataset
        (folder / "no" / f"bad{i}.wav").write_bytes(b"not audio")
    with pytest.raises(DataError, match=r"8 of 34 audio files in .* are unreadable"):
        load_dataset(DataConfig(source=f"wav:{folder}"))


def test_bad_audio_settings_are_one_line(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "x.wav", sine(300, 8000, 0.5), 8000)
    for flags, words in ((["data.sample_rate=100"], "data.sample_rate is 100"),
                         (["data.seconds=0"], "data.seconds is 0"),
                         (['data.label_pattern="{speaker}"'], "has no {label} field")):
        assert main(["train", "fsdd-specgan", "--set", f"data.source=wav:{tmp_path}", *sum([["--set", f] for f in flags], []),
                     "--steps", "1", "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1


@needs_fsdd
def test_griffin_lim_recovers_real_speech_from_its_magnitude():
    """The STFT settings of the spectrogram GAN (n_fft 256, hop 64 at 8 kHz): 32 iterations of fast
    Griffin-Lim from random phase reach a spectral convergence below 0.12 on real spoken digits
    (measured 0.080; 0.151 after 8 iterations, 0.056 after 100), and more iterations do better."""
    stft = STFT(256, 64)
    waves = []
    for name in ("0_george_0", "5_jackson_3", "9_lucas_7", "3_nicolas_1"):
        x, _ = read_audio(FSDD / f"{name}.wav", 8000)
        waves.append(torch.from_numpy(fit_length(x / np.abs(x).max(), 8000)))
    wave = torch.stack(waves)
    mag = stft.magnitude(wave)
    g = torch.Generator().manual_seed(0)
    sc8 = spectral_convergence(mag, stft.griffin_lim(mag, 8000, iters=8, generator=g), stft)
    sc32 = spectral_convergence(mag, stft.griffin_lim(mag, 8000, iters=32, generator=g), stft)
    assert sc32 < 0.12 and sc32 < sc8
    spec = stft.encode(wave)  # the GAN's picture of it: [-1, 1], Nyquist bin dropped
    assert spec.shape == (4, 1, 128, 126) and spec.min() >= -1 and spec.max() <= 1
    back = stft.decode(spec, 8000, iters=32, generator=g)
    assert spectral_convergence(mag[:, :128], back, stft) < 0.12  # through the 80 dB floor as well (0.081)


def tiny_specgan(source: str, **model) -> dict:
    return {"name": "tiny-specgan", "seed": 0,
            "data": {"source": source, "label_pattern": "{label}_{speaker}_{index}", "split_pattern": "index=0-4",
                     "seconds": 0.5},
            "model": {"name": "specgan", "n_fft": 128, "hop": 64, "channels": 4, "z_dim": 16, "conditional": True,
                      "griffin_lim_iters": 4, **model},
            "train": {"steps": 4, "batch_size": 8, "log_every": 2, "sample_every": 2, "ckpt_every": 2,
                      "progress": False, "threads": 1}}


@needs_fsdd
def test_a_spectrogram_gan_trains_resumes_byte_identically_samples_wavs_and_loads(tmp_path):
    folder = fsdd_subset(tmp_path, indices=range(0, 7), speakers=("george",))
    cfg = tiny_specgan(f"wav:{folder}")
    train(load_config(cfg), tmp_path / "once", echo=lambda m: None)
    train(load_config(cfg, ["train.steps=2"]), tmp_path / "twice", echo=lambda m: None)
    train(load_config(cfg), tmp_path / "twice", resume=True, echo=lambda m: None)
    a, b = (load_file(str(list_checkpoints(tmp_path / r)[-1] / "model.safetensors")) for r in ("once", "twice"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    run = tmp_path / "once"
    assert (run / "samples" / "spectrograms.png").is_file() and len(list((run / "samples").glob("*.wav"))) == 64
    report = (run / "report.md").read_text()
    assert "samples/spectrograms.png" in report and "samples/000-0.wav" in report
    meta = json.loads((run / "data.json").read_text())
    assert meta["sample_rate"] == 8000 and meta["samples"] == 4000

    gen = aigc.load(run)
    clips = gen.sample(3, labels="7", seed=1)
    assert clips.wave.shape == (3, 4000) and clips.rate == 8000 and clips.labels == ["7"] * 3
    assert torch.equal(gen.sample(3, labels="7", seed=1).wave, clips.wave)  # same seed, same sound
    assert clips.wave.abs().max() <= 1

    assert main(["sample", str(run), "--label", "7", "--n", "4", "--seed", "0", "--out", str(tmp_path / "sevens")]) == 0
    wavs = sorted((tmp_path / "sevens").glob("*.wav"))
    assert [w.name for w in wavs] == [f"00{i}-7.wav" for i in range(4)]
    data, rate = sf.read(wavs[0], dtype="int16")
    info = sf.info(wavs[0])
    assert rate == 8000 and info.subtype == "PCM_16" and data.shape == (4000,)
    assert all((w.with_suffix(".png")).is_file() for w in wavs)
    assert main(["sample", str(run), "--n", "5", "--format", "npz", "--out", str(tmp_path / "raw.npz")]) == 0
    with np.load(tmp_path / "raw.npz") as z:
        assert z["x"].dtype == np.int16 and z["x"].shape == (5, 4000) and int(z["sample_rate"]) == 8000

    from fastapi.testclient import TestClient

    from aigc.serve import create_app

    with TestClient(create_app({"digits": run})) as c:  # the service: WAV by default, players' data in JSON
        info = c.get("/models").json()[0]
        assert info["modality"] == "audio" and info["formats"] == ["wav", "json"]
        r = c.post("/models/digits/samples", json={"n": 3, "seed": 1, "label": "7"})
        assert r.headers["content-type"] == "audio/wav"
        both, rate = sf.read(io.BytesIO(r.content), dtype="float32")
        assert rate == 8000 and len(both) == 3 * 4000 + 2 * 2000  # three clips, a quarter second apart
        j = c.post("/models/digits/samples", json={"n": 2, "seed": 1, "label": "7", "format": "json"}).json()
        assert len(j["samples"]) == 2 and all(x.startswith("data:audio/wav;base64,") for x in j["samples"])


@needs_fsdd
def test_clip_length_must_fit_the_spectrogram(tmp_path, capsys):
    folder = fsdd_subset(tmp_path, indices=range(0, 6), speakers=("george",))
    cfg = tiny_specgan(f"wav:{folder}", hop=16)
    with pytest.raises(ConfigError, match=r"clips of 0.5 s make 251 frames at hop 16; a specgan with n_fft 128 sees 64"):
        train(load_config(cfg), tmp_path / "r", echo=lambda m: None)


def test_a_conditional_runs_spectrogram_grid_has_one_column_per_label():
    from aigc.modalities.audio import Clips, label_period, spectrogram_grid, spectrogram_image

    assert label_period([str(i % 10) for i in range(23)]) == 10
    assert label_period(["a", "b", "a"]) == 2 and label_period(["a", "a"]) == 0 and label_period(None) == 0
    assert label_period(["0", "1", "2", "0", "1", "3"]) == 0  # not a cycle
    wave = torch.from_numpy(sine(440, 8000, 0.5)).repeat(23, 1)
    w, h = spectrogram_image(wave[0], 8000).size
    assert spectrogram_grid(Clips(wave, 8000, [str(i % 10) for i in range(23)])).size == (10 * (w + 2) + 2,
                                                                                        14 + 3 * (h + 2) + 2)
    assert spectrogram_grid(Clips(wave, 8000)).size == (8 * (w + 2) + 2, 3 * (h + 2) + 2)


def test_clips_from_files_are_read_like_the_data_and_bad_ones_are_one_line(tmp_path):
    from types import SimpleNamespace

    from aigc.metrics.audio import read_audio_samples

    data = SimpleNamespace(meta={"sample_rate": 8000, "samples": 4000, "class_names": ["a", "b"]})
    x = np.stack([np.round(sine(300 + 100 * i, 8000, 0.5) * 32767).astype(np.int16) for i in range(4)])
    np.savez(tmp_path / "ok.npz", x=x, sample_rate=8000, labels=np.array(["a", "b", "a", "b"]))
    wave, asked = read_audio_samples(tmp_path / "ok.npz", data, None)
    assert wave.shape == (4, 4000) and asked.tolist() == [0, 1, 0, 1]
    assert torch.allclose(wave, torch.from_numpy(x / 32768.0).float())
    fast = np.stack([np.round(sine(300, 16_000, 0.5) * 32767).astype(np.int16)] * 2)
    np.savez(tmp_path / "fast.npz", x=fast, sample_rate=16_000)  # resampled to the data's rate
    wave, asked = read_audio_samples(tmp_path / "fast.npz", data, None)
    assert wave.shape == (2, 4000) and asked is None
    assert float((wave[0] - torch.from_numpy(sine(300, 8000, 0.5))).abs()[100:-100].max()) < 0.01
    said = []
    np.savez(tmp_path / "other.npz", x=x, sample_rate=8000, labels=np.array(["a", "c", "a", "b"]))
    assert read_audio_samples(tmp_path / "other.npz", data, None, said.append)[1] is None
    assert "not all classes of the data" in said[0]
    for name, arrays, words in [
        ("rate", {"x": x, "sample_rate": 0}, "sample_rate is 0"),
        ("labels", {"x": x, "sample_rate": 8000, "labels": np.array(["a", "b"])}, "labels has shape [2] for 4 clips"),
        ("nan", {"x": np.full((2, 4000), np.nan, np.float32), "sample_rate": 8000}, "NaN or infinite"),
        ("obj", {"x": np.array([[1], "a"], dtype=object)}, "is not an npz of clips"),
        ("3d", {"x": np.zeros((2, 1, 4000), np.int16)}, "x is int16 [2, 1, 4000]"),
    ]:
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(DataError, match=re.escape(words)):
            read_audio_samples(tmp_path / f"{name}.npz", data, None)
    folder = tmp_path / "wavs"
    folder.mkdir()
    for stem in ("000-a", "001-b"):
        sf.write(folder / f"{stem}.wav", sine(440, 8000, 0.5), 8000)
    assert read_audio_samples(folder, data, None)[1].tolist() == [0, 1]
    sf.write(folder / "take-b.wav", sine(440, 8000, 0.5), 8000)  # not NNN-LABEL: no labels for the folder
    assert read_audio_samples(folder, data, None)[1] is None
    with pytest.raises(ConfigError, match="--n is 9 but"):
        read_audio_samples(folder, data, 9)


def test_int16_to_float_is_exact_at_full_scale():
    x = torch.tensor([-32768, 0, 16384], dtype=torch.int16)
    assert to_float(x).tolist() == [-1.0, 0.0, 0.5]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make test installs it)")
def test_spoken_digits_are_synthesized_labelled_and_marked_synthetic(tmp_path):
    ds = load_dataset(DataConfig(source="spoken-digits:en-us", sample_rate=8000, seconds=1.0))
    assert ds.meta["synthetic"] and "espeak-ng" in ds.meta["note"] and ds.meta["class_names"] == list("0123456789")
    assert ds.train["x"].shape == (10 * 10 * 4, 1, 8000) and ds.test["x"].shape == (10 * 2 * 4, 1, 8000)
    assert ds.train["y"].bincount().tolist() == [40] * 10
    rms = to_float(ds.train["x"]).pow(2).mean((1, 2)).sqrt()
    assert (rms > 0.02).all()  # every clip holds speech, none is silence
    with pytest.raises(ConfigError, match="spoken-digits has no accent 'en-xx'"):
        load_dataset(DataConfig(source="spoken-digits:en-xx"))
    cfg = tiny_specgan("spoken-digits:en-us")
    cfg["data"] = {"source": "spoken-digits:en-us", "seconds": 0.5}
    train(load_config(cfg), tmp_path / "run", echo=lambda m: None)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "synthetic speech made by espeak-ng" in report


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make test installs it)")
def test_a_spectrogram_flow_trains_resumes_byte_identically_and_says_the_digit_asked_for(tmp_path):
    from aigc.models.capabilities import DensityLikelihood

    cfg = {"name": "tiny-specflow", "seed": 0, "data": {"source": "spoken-digits:en-us", "seconds": 0.5},
           "model": {"name": "specflow", "n_fft": 128, "hop": 64, "patch": 2, "widths": [8, 16], "conditional": True,
                     "guidance": 2.0, "griffin_lim_iters": 4, "sample_steps": 3},
           "train": {"steps": 4, "batch_size": 8, "log_every": 2, "sample_every": 2, "ckpt_every": 2,
                     "progress": False, "threads": 1}}
    train(load_config(cfg), tmp_path / "once", echo=lambda m: None)
    train(load_config(cfg, ["train.steps=2"]), tmp_path / "twice", echo=lambda m: None)
    train(load_config(cfg), tmp_path / "twice", resume=True, echo=lambda m: None)
    a, b = (load_file(str(list_checkpoints(tmp_path / r)[-1] / "model.safetensors")) for r in ("once", "twice"))
    assert a.keys() == b.keys() and any("net_ema" in k for k in a) and all(torch.equal(a[k], b[k]) for k in a)
    run = tmp_path / "once"
    assert len(list((run / "samples").glob("*.wav"))) == 64 and "spectrograms.png" in (run / "report.md").read_text()

    gen = aigc.load(run)
    assert not isinstance(gen.model, DensityLikelihood)  # its likelihood would be of spectrogram pixels, not sound
    clips = gen.sample(3, labels="7", seed=1)
    assert clips.wave.shape == (3, 4000) and clips.rate == 8000 and clips.labels == ["7"] * 3
    assert torch.equal(gen.sample(3, labels="7", seed=1).wave, clips.wave)  # same seed, same sound
    assert not torch.equal(gen.sample(3, labels="7", seed=1, guidance=0.0).wave, clips.wave)
    assert main(["sample", str(run), "--label", "3", "--n", "2", "--sample-steps", "2", "--out", str(tmp_path / "t.npz")]) == 0
    with np.load(tmp_path / "t.npz") as z:
        assert z["x"].shape == (2, 4000) and z["labels"].tolist() == ["3", "3"]


def test_the_audio_audit_finds_copies_leaks_silence_and_conversions(tmp_path, capsys):
    folder = tmp_path / "clips"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("a", "b"):
            (folder / split / label).mkdir(parents=True)
    for i in range(10):  # distinct tones with a little noise
        for label, base in (("a", 300), ("b", 900)):
            x = sine(base + 37 * i, 8000, 0.5) + 0.01 * rng.standard_normal(4000).astype(np.float32)
            sf.write(folder / "train" / label / f"{i}.wav", x, 8000)
    for i in range(3):
        x = sine(2000 + 100 * i, 16_000, 0.5)
        sf.write(folder / "test" / "a" / f"own{i}.wav", x, 16_000)  # resampled and counted
    shutil.copy(folder / "train" / "a" / "3.wav", folder / "test" / "a" / "leak.wav")  # an exact leak
    x, _ = sf.read(folder / "train" / "b" / "4.wav", dtype="float32")
    sf.write(folder / "test" / "b" / "near.wav", 0.5 * x + 0.0005 * rng.standard_normal(len(x)), 8000)  # quieter copy
    sf.write(folder / "train" / "a" / "copy.wav", sf.read(folder / "train" / "a" / "5.wav")[0], 8000)  # a duplicate
    sf.write(folder / "train" / "b" / "quiet.wav", 0.001 * rng.standard_normal(4000).astype(np.float32) *
             (np.arange(4000) < 40), 8000)  # a click, then silence
    out = tmp_path / "audit"
    assert main(["data", "audit", f"wav:{folder}", "--seconds", "0.5", "--out", str(out)]) == 0
    r = json.loads((out / "report.json").read_text())
    assert r["splits"]["train"]["n"] == 22 and r["splits"]["test"]["n"] == 5
    assert r["exact_duplicates"]["groups"] == 2  # the leak and the in-train copy
    assert r["cross_split"] == {**r["cross_split"], "test_items_exact_in_train": 1, "test_items_near_in_train": 1}
    assert r["silent"]["count"] == 1 and r["files"]["converted"]["rate 16000"] == 3
    assert r["files"]["durations_s"] == [0.5, 0.5, 0.5]
    text = (out / "report.md").read_text()
    assert "test clips in the training split: 1 exact, 1 near" in text and "resampled to 8000 Hz" in text
    said = capsys.readouterr().out
    assert "test clips in train 1 exact + 1 near" in said


@needs_fsdd
def test_eval_measures_an_audio_run_on_a_spoken_digit_network_beside_the_real_floor(tmp_path, capsys):
    from aigc.metrics import EvalRequest, evaluate_run

    folder = fsdd_subset(tmp_path, indices=range(0, 10), speakers=("george", "jackson"))
    cfg = tiny_specgan(f"wav:{folder}")
    train(load_config(cfg), tmp_path / "run", echo=lambda m: None)
    r = evaluate_run(tmp_path / "run", EvalRequest(n=100, echo=lambda m: None))
    assert r["n"] == 100 and r["n_real"] == 100 and r["features"]["test_accuracy"] > 0.5
    for key in ("fid", "kid", "is", "precision", "recall", "density", "coverage", "label_accuracy", "copies"):
        assert np.isfinite(r[key]), key
    assert set(r["per_label_accuracy"]) == {str(d) for d in range(10)}
    assert r["floor"]["fid"] < r["fid"]  # four steps of training sound nothing like speech yet
    assert 1 <= r["is"] <= 10 and 0 <= r["recall"] <= 1
    out = tmp_path / "floor.json"
    assert main(["eval", "--real", f"wav:{folder}", "--label-pattern", "{label}_{speaker}_{index}", "--split-pattern",
                 "index=0-4", "--seconds", "0.5", "--n", "100", "--out", str(out), "--quiet"]) == 0
    floor = json.loads(out.read_text())
    assert floor["kind"] == "floor" and floor["fid"] == pytest.approx(r["floor"]["fid"])

    # the run's samples written to files and measured from there give the run's figures again
    real = ["--real", f"wav:{folder}", "--label-pattern", "{label}_{speaker}_{index}", "--split-pattern", "index=0-4",
            "--seconds", "0.5", "--n", "100", "--quiet"]
    assert main(["sample", str(tmp_path / "run"), "--n", "100", "--seed", "0", "--format", "npz",
                 "--out", str(tmp_path / "s.npz")]) == 0
    assert main(["sample", str(tmp_path / "run"), "--n", "100", "--seed", "0", "--out", str(tmp_path / "wavs")]) == 0
    for given in ("s.npz", "wavs"):
        assert main(["eval", "--samples", str(tmp_path / given), *real, "--out", str(tmp_path / "e.json")]) == 0
        e = json.loads((tmp_path / "e.json").read_text())
        assert e["kind"] == "samples" and e["n"] == 100, given
        assert e["label_accuracy"] == pytest.approx(r["label_accuracy"], abs=0.02), given  # 16-bit rounding
        assert e["fid"] == pytest.approx(r["fid"], rel=0.02) and e["floor"]["fid"] == pytest.approx(r["floor"]["fid"])
    assert main(["eval", "--samples", str(tmp_path / "s.npz"), *real[:-3], "--n", "500"]) == 2
    assert "--n is 500 but" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert main(["eval", "--samples", str(tmp_path / "bad.npz"), *real]) == 2
    assert "bad.npz is not an npz of clips" in capsys.readouterr().err


def test_the_shipped_spoken_digit_network_records_its_accuracy_and_how_it_was_made():
    from aigc.metrics.audio import ASSETS, SHIPPED, load_audio_features

    info = json.loads((ASSETS / f"{SHIPPED}.json").read_text())
    assert info["test_accuracy"] >= 0.97 and info["n_test"] == 300
    assert info["trained_by"].startswith("python -m aigc.metrics.audio ")
    feats = load_audio_features(ASSETS / SHIPPED)
    assert feats.net.num_classes == 10 and feats.info["class_names"] == list("0123456789")
    if FSDD.is_dir():  # the sidecar's figure is what the weights give on FSDD's test split
        ds = load_dataset(DataConfig(source=f"wav:{FSDD}", label_pattern="{label}_{speaker}_{index}",
                                     split_pattern="index=0-4", sample_rate=8000, seconds=1.0))
        _, logits = feats(ds.test["x"])
        assert float((logits.argmax(1) == ds.test["y"]).double().mean()) == pytest.approx(info["test_accuracy"], abs=1e-4)
