"""Music: the sixteenth grid and its tokens, chorales and MIDI folders, the sequence families trained on
them through the CLI, sampling options, MIDI/WAV/piano-roll output, evaluation, audit and mistakes."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("music21")
pytest.importorskip("pretty_midi")

from aigc.score import (  # noqa: E402
    BAR,
    INDEX,
    Score,
    common_shift,
    decode,
    encode,
    find_key,
    midi_bytes,
    parse_key,
    pitch_class_weights,
    scores_from_pretty,
)

from .conftest import run_cli  # noqa: E402

FIRST = ["bwv1.6.mxl", "bwv10.7.mxl", "bwv101.7.mxl", "bwv102.7.mxl", "bwv103.6.mxl", "bwv104.6.mxl",
         "bwv108.6.mxl", "bwv11.6.mxl", "bwv110.7.mxl", "bwv111.6.mxl", "bwv113.8.mxl", "bwv114.7.mxl"]


@pytest.fixture(scope="module")
def chorales():
    """A dozen chorales of music21's corpus, parsed as the `chorales` source parses them."""
    from aigc.data.music import chorale_paths, read_chorale

    by_name = {p.name: p for p in chorale_paths()}
    got = [read_chorale(by_name[n]) for n in FIRST if n in by_name]
    scores = [s for s in got if isinstance(s, Score)]
    assert len(scores) >= 10, got
    return scores


@pytest.fixture(scope="module")
def midi_folder(chorales, tmp_path_factory):
    """The chorales written as MIDI files, plus a damaged file and a one-part file."""
    import pretty_midi

    root = tmp_path_factory.mktemp("midi")
    for s in chorales:
        (root / f"{s.name}.mid").write_bytes(midi_bytes(s))
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    solo = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0, end=1))
    solo.instruments.append(inst)
    solo.write(str(root / "solo.mid"))
    return root


def test_chorales_are_four_voices_on_a_sixteenth_grid_and_tokens_round_trip(chorales):
    for s in chorales:
        assert s.pitch.shape[0] == 4 and s.steps > 0 and s.bars[0] == 0
        sounding = s.pitch[s.pitch >= 0]
        assert sounding.min() >= 30 and sounding.max() <= 90  # voices, not garbage
        voice_means = [s.pitch[v][s.pitch[v] >= 0].mean() for v in range(4)]
        assert voice_means == sorted(voice_means, reverse=True)  # soprano highest, bass lowest
        common = s.transposed(common_shift(s.tonic, s.mode))
        assert common.tonic == (0 if s.mode == "major" else 9)
        ids = encode(common)
        assert ids.count(INDEX[BAR]) == len(common.bar_slices())
        back = decode(ids)
        assert back.facts["skipped"] == 0
        np.testing.assert_array_equal(back.pitch, common.pitch)
        np.testing.assert_array_equal(back.onset, common.onset)
        assert back.bars == [a for a, _ in common.bar_slices()] and back.mode == s.mode and back.meter == s.meter
        # a window cut mid-piece starts its held notes again and decodes to the same sounding pitches
        cut = common.cut(2, 4)
        np.testing.assert_array_equal(decode(encode(common, 2, 4)).pitch, cut.pitch)


def test_our_key_finder_agrees_with_music21_on_real_chorales(chorales):
    """Krumhansl-Schmuckler is written here (for MIDI files and the key-consistency measure): checked
    against music21's analyze('key'), which labels the chorales."""
    same = sum(find_key(pitch_class_weights(s.pitch))[:2] == (s.tonic, s.mode) for s in chorales)
    assert same >= len(chorales) - 2, same


def test_keys_parse_and_refuse_in_one_line():
    from aigc.errors import ConfigError

    assert parse_key("D") == (2, "major") and parse_key("F# minor") == (6, "minor")
    assert parse_key("bb minor") == (10, "minor") and parse_key("Eb") == (3, "major") and parse_key("a") == (9, "minor")
    for bad in ("H", "C sharp", "D dorian", "", "C major minor"):
        with pytest.raises(ConfigError):
            parse_key(bad)


def test_midi_round_trip_keeps_the_notes(chorales):
    import io

    import pretty_midi

    s = chorales[0]
    back = scores_from_pretty(pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes(s))), "x")
    n = min(back.steps, s.steps)
    np.testing.assert_array_equal(back.pitch[:, :n], s.pitch[:, :n])
    assert back.meter == s.meter and abs(back.steps - s.steps) <= 4


@pytest.mark.parametrize("meter", ["6/8", "3/2", "3/4"])
def test_midi_of_any_meter_comes_back_on_the_sixteenth_grid(meter):
    import io

    import pretty_midi

    from aigc.score import steps_per_bar

    per = steps_per_bar(meter)
    rng = np.random.default_rng(0)
    steps = per * 3
    pitch = np.zeros((4, steps), dtype=np.int16)
    onset = np.zeros((4, steps), dtype=bool)
    for v, base in enumerate((72, 65, 57, 48)):
        s = 0
        while s < steps:
            n = int(rng.choice([1, 2, 3, 4, 6]))
            pitch[v, s:s + n] = base + int(rng.integers(-3, 4))
            onset[v, s] = True
            s += n
    score = Score(pitch, onset, [0, per, 2 * per], meter, 0, "major", "x")
    back = scores_from_pretty(pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes(score))), "x")
    assert back.meter == meter and back.bars == score.bars and back.steps == steps
    np.testing.assert_array_equal(back.pitch, pitch)
    np.testing.assert_array_equal(back.onset, onset)


def test_midi_folder_reads_what_it_can_and_lists_the_rest(midi_folder, tmp_path):
    out = tmp_path / "audit"
    r = run_cli("data", "audit", f"midi:{midi_folder}", "--out", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["pieces"] == len(list(midi_folder.glob("bwv*.mid")))
    assert set(report["skipped"]) == {"broken", "solo"}
    assert "four voices" in report["skipped"]["solo"]
    assert report["cross_split"]["pieces_in_two_splits"] == 0
    assert set(report["voice_ranges"]) == {"soprano", "alto", "tenor", "bass"}
    assert "pieces" in r.stdout and "left out 2" in r.stdout


def test_pieces_never_share_a_split_and_copies_go_together(chorales):
    from aigc.data.music import body_hash, split_pieces

    twins = chorales + [Score(chorales[0].pitch.copy(), chorales[0].onset.copy(), list(chorales[0].bars),
                              chorales[0].meter, chorales[0].tonic, chorales[0].mode, "twin")]
    splits = split_pieces(twins, 0.2, 3)
    where = {s.name: k for k, v in splits.items() for s in v}
    assert sum(len(v) for v in splits.values()) == len(twins) and len(splits["test"]) >= 2
    assert where["twin"] == where[chorales[0].name]
    hashes = {k: {body_hash(s) for s in v} for k, v in splits.items()}
    assert not (hashes["train"] & hashes["test"]) and not (hashes["train"] & hashes["val"])
    assert split_pieces(twins, 0.2, 3) == splits


def _train(tmp_path, midi_folder, family: dict, name: str):
    cfg = {"name": name, "seed": 0, "data": {"source": f"midi:{midi_folder}", "block_size": 300, "test_fraction": 0.2},
           "model": family,
           "train": {"steps": 30, "batch_size": 8, "lr": 0.003, "log_every": 10, "sample_every": 0,
                     "ckpt_every": 30, "progress": False, "threads": 1}}
    import yaml

    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / name
    r = run_cli("train", str(path), "--out", str(run))
    assert r.returncode == 0, r.stderr
    return run


def test_a_transformer_learns_music_and_samples_midi_wav_and_piano_rolls(tmp_path, midi_folder):
    import io

    import pretty_midi
    import soundfile

    run = _train(tmp_path, midi_folder, {"name": "transformer", "layers": 1, "heads": 2, "width": 32}, "tf")
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line]
    assert losses[-1] < losses[0] - 1.0  # from ~4.7 nats (uniform over 110 tokens) it learns the grid
    meta = json.loads((run / "data.json").read_text())
    assert meta["codec"] == "music" and meta["tokens"][INDEX[BAR]] == "|" and meta["prompts"]
    assert (run / "samples" / "pianorolls.png").is_file() and "pianorolls.png" in (run / "report.md").read_text()

    out = tmp_path / "pieces"
    r = run_cli("sample", str(run), "--n", "3", "--bars", "3", "--prompt-bars", "1", "--key", "D",
                "--temperature", "0.9", "--top-p", "0.95", "--seed", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    facts = json.loads((out / "pieces.json").read_text())
    assert len(facts) == 3 and all(f["key"] == "D major" and f["bars"] <= 3 for f in facts)
    assert all(f["skipped"] == 0 for f in facts)  # the grammar keeps every token in its place, even after 30 steps
    assert all(f["prompt"] in meta["pieces"]["test"] for f in facts)
    for f in facts:
        pm = pretty_midi.PrettyMIDI(io.BytesIO((out / f"{f['file']}.mid").read_bytes()))
        assert [i.name for i in pm.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
        wave, rate = soundfile.read(str(out / f"{f['file']}.wav"))
        assert rate == 22_050 and len(wave) > rate and np.abs(wave).max() > 0.1
        assert (out / f"{f['file']}.png").stat().st_size > 200
    # the prompt's bar is the test piece's first bar, moved from C major / A minor to D
    from aigc.run import load

    loaded = load(run)
    a = loaded.sample(2, seed=5, bars=2, prompt_bars=1, key="D")
    b = loaded.sample(2, seed=5, bars=2, prompt_bars=1)
    assert a[0].key == "D major" and b[0].key in ("C major", "A minor")
    if b[0].mode == "major":
        np.testing.assert_array_equal(a[0].pitch[a[0].pitch >= 0], b[0].pitch[b[0].pitch >= 0] + 2)
    # longer than the Transformer's 300-token context: it goes on from its newest bars, every bar whole
    long = loaded.sample(2, seed=2, bars=7)
    assert all(len(p.bar_slices()) == 7 and p.facts["skipped"] == 0 for p in long)
    assert all(b - a == 16 for p in long for a, b in p.bar_slices()[1:])  # 4/4 bars after a possible upbeat
    kept = loaded.sample(3, seed=5, bars=2, max_copy_bars=0)
    assert len(kept) == 3 and all(p.facts["copy_bars"] == 0 for p in kept)
    c = loaded.sample(2, seed=5, bars=2, prompt_bars=1)
    np.testing.assert_array_equal(b[1].pitch, c[1].pitch)  # a seed gives the same pieces

    # the service answers WAVs (JSON of data: URLs, which its page plays) and takes the music options
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from aigc.serve import create_app

    with TestClient(create_app({"bach": run})) as client:
        spec = client.get("/models").json()
        options = next(m for m in (spec if isinstance(spec, list) else spec["models"]) if m["name"] == "bach")["options"]
        assert {"bars", "prompt_bars", "key", "temperature", "top_p"} <= set(options)
        got = client.post("/models/bach/samples", json={"n": 2, "seed": 3, "bars": 2, "key": "G minor", "format": "json"})
        assert got.status_code == 200, got.text
        assert all(x.startswith("data:audio/wav;base64,") for x in got.json()["samples"])
        wav = client.post("/models/bach/samples", json={"n": 2, "seed": 3, "bars": 2, "format": "wav"})
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
        bad = client.post("/models/bach/samples", json={"n": 1, "key": "H"})
        assert bad.status_code == 422 and "not a note name" in bad.json()["error"]

    r = run_cli("eval", str(run), "--n", "4")
    assert r.returncode == 0, r.stderr
    result = json.loads((run / "eval.json").read_text())
    nll = result["likelihood"]
    assert 0 < nll["nats_per_token"] < 5 and nll["nats_per_step"] > nll["nats_per_voice_token"]
    assert {s["name"] for s in result["sections"]} == {"likelihood", "music", "copying"}
    assert result["floor"]["sections"] and "nats_per_step" in r.stdout


def test_an_lstm_trains_on_the_same_music(tmp_path, midi_folder):
    run = _train(tmp_path, midi_folder, {"name": "lstm", "embed": 16, "hidden": 32}, "lstm")
    from aigc.run import load

    pieces = load(run).sample(2, seed=0, bars=2)
    assert len(pieces) == 2 and all(p.pitch.shape[0] == 4 for p in pieces)


def test_music_mistakes_are_one_line(tmp_path, midi_folder):
    run = _train(tmp_path, midi_folder, {"name": "gru", "embed": 8, "hidden": 16}, "gru")
    for args, words in ((["--key", "H minor"], "not a note name"), (["--bars", "2", "--prompt-bars", "2"], "prompt"),
                        (["--label", "3"], "does not apply"), (["--bars", "0"], "bars is 0"),
                        (["--format", "png"], "--format png")):
        r = run_cli("sample", str(run), "--n", "1", *args, "--out", str(tmp_path / "x"))
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    for source, words in ((f"midi:{empty}", "no .mid"), (f"midi:{tmp_path / 'nowhere'}", "does not exist")):
        r = run_cli("data", "audit", source, "--out", str(tmp_path / "a"))
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    bad = tmp_path / "gan.yaml"
    bad.write_text(f"name: g\ndata: {{source: 'midi:{midi_folder}', block_size: 512}}\nmodel: {{name: gan-mlp}}\ntrain: {{steps: 1}}\n")
    r = run_cli("train", str(bad), "--out", str(tmp_path / "g"))
    assert r.returncode == 2 and "makes image but" in r.stderr and "holds music" in r.stderr, r.stderr


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth is not installed (make synth)")
def test_fluidsynth_and_the_additive_synth_both_sound_the_notes(chorales):
    from aigc.score import additive, render

    s = chorales[0].cut(0, 2)
    wave, how = render(s)
    assert how == "fluidsynth" and np.abs(wave).max() > 0.1
    plain = additive(s)
    assert plain.dtype == np.float32 and 0.5 < np.abs(plain).max() <= 0.9 + 1e-6
    # the synth's loudest frequency in the first note matches the bass's or a voice's pitch
    first = s.pitch[:, 0]
    spec = np.abs(np.fft.rfft(plain[:4096]))
    peak = np.fft.rfftfreq(4096, 1 / 22_050)[spec.argmax()]
    freqs = 440 * 2 ** ((first[first >= 0] - 69) / 12)
    assert np.min(np.abs(freqs - peak)) < 8, (peak, freqs)


def test_a_lying_data_json_is_one_line(tmp_path, midi_folder):
    run = _train(tmp_path, midi_folder, {"name": "gru", "embed": 8, "hidden": 16}, "liar")
    meta = json.loads((run / "data.json").read_text())
    meta["prompts"][0]["ids"][3] = 10_000
    (run / "data.json").write_text(json.dumps(meta))
    r = run_cli("sample", str(run), "--n", "1", "--prompt-bars", "1", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "'prompts'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_copies_of_training_bars_are_found_in_order(chorales):
    from aigc.score import CopyFinder

    finder = CopyFinder.unpack(CopyFinder.of(chorales[:5]).pack())
    whole = chorales[2]
    assert finder.longest(whole) == len(whole.bar_slices())
    assert finder.longest(whole.cut(3, 6)) >= 3 - 1  # the cut's first bar restarts its held notes
    assert finder.longest(chorales[7]) <= 1
