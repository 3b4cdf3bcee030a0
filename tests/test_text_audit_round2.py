"""Text and audit, round 2: samples cut by data.block_size are said (train start, report, audit);
ANSI escape sequences are named as such (not homoglyphs) and stripped by `aigc data prepare
--strip-ansi`; sampled text is shown escaped; distinct-n and novelty are left out for `text:`
streams; the image audit warns on tiny datasets and on sizes the conv families cannot build."""
from __future__ import annotations

import contextlib
import io
import json
import random
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from aigc.cli import main

GREEN, RESET = "\x1b[32m", "\x1b[0m"
WORDS = "ветер луна река снег ночь звезда берег поле лес тишина свет окно".split()
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def poems(n: int = 300, seed: int = 0, ansi: bool = True) -> list[str]:
    """Cyrillic lines, every third wrapped in a terminal colour code; every tenth 70..100 characters."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        target = rng.randint(70, 100) if i % 10 == 0 else rng.randint(10, 40)
        words = []
        while len(" ".join(words)) < target:
            words.append(rng.choice(WORDS))
        line = " ".join(words)[:target].strip()
        out.append(f"{GREEN}{line}{RESET}" if ansi and i % 3 == 0 else line)
    return out


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(*args: str) -> tuple[int, str, str]:
    """main(args) with its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def train_tiny(tmp: Path, source: str, name: str, **data) -> tuple[Path, str]:
    cfg = {"name": name, "data": {"source": source, "test_fraction": 0.1, **data},
           "model": {"name": "gru", "embed": 8, "hidden": 16},
           "train": {"steps": 5, "batch_size": 16, "lr": 0.01, "log_every": 5, "sample_every": 0, "threads": 1,
                     "progress": False}}
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    run = tmp / name
    code, out, err = cli("train", str(tmp / f"{name}.yaml"), "--out", str(run))
    assert code == 0, err
    return run, out


@pytest.fixture(scope="module")
def poem_run(tmp_path_factory):
    """One tiny GRU trained on the coloured poems at the default data.block_size (64)."""
    tmp = tmp_path_factory.mktemp("poems")
    lines = poems()
    data = write_lines(tmp / "poems.txt", lines)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGC_CACHE", str(tmp / "cache"))
        run, out = train_tiny(tmp, f"lines:{data}", "poems")
    return run, out, lines


# ---------------------------------------------------------------- 1. samples cut by data.block_size

def test_samples_cut_by_block_size_are_said_at_train_start_and_in_the_report(poem_run):
    run, out, lines = poem_run
    cut = sum(len(s) >= 64 for s in lines)        # each needs its 64+ characters and the end token
    longest = max(len(s) for s in lines)
    assert 20 <= cut < len(lines)
    meta = json.loads((run / "data.json").read_text(encoding="utf-8"))
    assert meta["truncated"] == cut and meta["max_chars"] == longest
    warning = next(line for line in out.splitlines() if line.startswith("warning:"))
    assert f"{cut} of {len(lines)} samples" in warning and "data.block_size=64" in warning
    assert f"set data.block_size={longest + 1}" in warning and "cut to their first 64 characters" in warning
    assert meta["warnings"] == [warning.removeprefix("warning: ")]
    report = (run / "report.md").read_text(encoding="utf-8")
    row = next(line for line in report.splitlines() if line.startswith("| data warnings |"))
    assert f"{cut} of {len(lines)} samples" in row and f"data.block_size={longest + 1}" in row


def test_a_block_size_that_fits_every_sample_warns_of_nothing():
    from aigc.data.text import text_dataset

    lines = [s for s in poems(100) if "\x1b" not in s]
    longest = max(map(len, lines))
    fits = text_dataset("t", {"train": lines}, kind="lines", block_size=longest + 1)
    assert fits.meta["truncated"] == 0 and "warnings" not in fits.meta
    tight = text_dataset("t", {"train": lines}, kind="lines", block_size=longest)
    assert tight.meta["truncated"] == sum(len(s) == longest for s in lines)
    assert f"set data.block_size={longest + 1}" in tight.meta["warnings"][0]


def test_the_audit_compares_lengths_with_the_block_size(tmp_path):
    lines = [s for s in poems() if "\x1b" not in s]
    data = write_lines(tmp_path / "p.txt", lines)
    code, out, _ = cli("data", "audit", f"lines:{data}", "--out", str(tmp_path / "a"))
    assert code == 0
    cut = sum(len(s) >= 64 for s in lines)
    assert "lengths compared with data.block_size=64 (the default" in out
    assert f"{cut} of {len(lines)} samples" in out and f"data.block_size={max(map(len, lines)) + 1}" in out
    report = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    assert sum(report["block_size"]["cut"].values()) == cut
    assert "## Lengths against data.block_size=64" in (tmp_path / "a" / "report.md").read_text(encoding="utf-8")

    code, out, _ = cli("data", "audit", f"lines:{data}", "--block-size", "128", "--out", str(tmp_path / "b"))
    assert code == 0 and "lengths compared with data.block_size=128" in out and "(the default" not in out
    assert "do not fit" not in out and "no sample cut by data.block_size=128" in out

    code, _, err = cli("data", "audit", f"lines:{data}", "--block-size", "0", "--out", str(tmp_path / "c"))
    assert code == 2 and "data.block_size" in err and "Traceback" not in err

    stream = tmp_path / "s.txt"
    stream.write_text(" ".join(lines), encoding="utf-8")
    code, out, _ = cli("data", "audit", f"text:{stream}", "--block-size", "32", "--out", str(tmp_path / "d"))
    report = json.loads((tmp_path / "d" / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and report["block_size"]["windows"] and "do not fit" not in out


# ---------------------------------------------------------------- 2. ANSI escape sequences

def test_ansi_codes_are_named_as_such_and_not_as_homoglyphs(tmp_path):
    lines = poems()
    lines.append(f"{GREEN}p\u0430ypal{RESET}")       # a real look-alike (Cyrillic a) beside colour codes
    data = write_lines(tmp_path / "poems.txt", lines)
    code, out, _ = cli("data", "audit", f"lines:{data}", "--out", str(tmp_path / "a"))
    assert code == 0
    coloured = sum("\x1b" in s for s in lines)
    report = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    assert report["ansi"]["samples"] == coloured and report["ansi"]["sequences"] == 2 * coloured
    assert dict(report["ansi"]["codes"]) == {"\\x1b[32m": coloured, "\\x1b[0m": coloured}
    assert report["suspicious"]["mixed_script_samples"] == 1          # paypal only, not the `m` of ESC[32m
    assert report["suspicious"]["samples"] == 0                       # the ESCs belong to the sequences
    advice = next(a for a in report["advice"] if "ANSI" in a)
    assert f"{coloured} samples hold {2 * coloured} ANSI escape sequences (terminal colour codes" in advice
    clean = tmp_path / "poems.clean.txt"
    command = f"aigc data prepare lines:{data} --strip-ansi --out {clean}"
    assert command in advice and command in out
    assert command in (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    assert not any("homoglyph" in a and "CYRILLIC+LATIN in 1" not in a for a in report["advice"])

    # the command the audit names does what it says, and the copy audits clean
    code, out, _ = cli(*shlex.split(command)[1:])
    assert code == 0 and f"removed {2 * coloured} ANSI escape sequences from {coloured} lines" in out
    assert f"--set data.source=lines:{clean}" in out
    assert clean.read_text(encoding="utf-8").splitlines() == [s.replace(GREEN, "").replace(RESET, "") for s in lines]
    code, _, _ = cli("data", "audit", f"lines:{clean}", "--out", str(tmp_path / "b"))
    again = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and again["ansi"]["sequences"] == 0 and not any("ANSI" in a for a in again["advice"])


def test_strip_ansi_refuses_what_it_cannot_clean_in_one_line(tmp_path):
    data = write_lines(tmp_path / "p.txt", poems(30))
    for args, words in [(["names"], "lines:FILE or text:FILE"),
                        ([f"lines:{data}", "--image-size", "32"], "no image options"),
                        ([f"lines:{tmp_path / 'nope.txt'}"], "does not exist")]:
        code, _, err = cli("data", "prepare", *args, "--strip-ansi", "--out", str(tmp_path / "out.txt"))
        assert code == 2 and words in err and "Traceback" not in err, err
    code, _, err = cli("data", "prepare", f"lines:{data}", "--strip-ansi", "--out", str(data))
    assert code == 2 and "the source file itself" in err
    assert "\x1b" in data.read_text(encoding="utf-8")              # left as it was
    code, _, err = cli("data", "prepare", f"lines:{data}", "--out", str(tmp_path / "prep"))
    assert code == 2 and "--strip-ansi" in err


# ---------------------------------------------------------------- 3. sampled text shown escaped

def test_sampled_text_is_escaped_on_the_terminal_and_kept_raw_in_files(poem_run, tmp_path):
    run, _, _ = poem_run
    code, out, _ = cli("sample", str(run), "--n", "4", "--prompt", GREEN, "--max-len", "10", "--seed", "0")
    assert code == 0
    shown = out.splitlines()
    assert len(shown) == 4 and all(s.startswith("\\x1b[32m") for s in shown)
    assert not CONTROL.search(out)
    code, _, _ = cli("sample", str(run), "--n", "4", "--prompt", GREEN, "--max-len", "10", "--seed", "0",
                     "--out", str(tmp_path / "s.txt"))
    kept = (tmp_path / "s.txt").read_text(encoding="utf-8").splitlines()
    assert code == 0 and all(s.startswith(GREEN) for s in kept)
    assert [s.replace("\x1b", "\\x1b") for s in kept] == shown
    assert not CONTROL.search((run / "report.md").read_text(encoding="utf-8"))


def test_the_report_shows_sample_control_characters_escaped(tmp_path):
    from aigc.plugins import MODALITIES

    path = tmp_path / "samples.txt"
    path.write_text(f"{GREEN}зелёный{RESET}\nbell\x07 cr\r del\x7f csi\x9b rtl\u202eabc\nfence ``` here\n",
                    encoding="utf-8")
    lines = MODALITIES.get("text").report_samples(tmp_path, path)
    block = "\n".join(lines)
    assert not CONTROL.search(block) and "\u202e" not in block
    for shown in ("\\x1b[32mзелёный\\x1b[0m", "bell\\x07 cr\\r del\\x7f csi\\x9b rtl\\u202eabc"):
        assert shown in block
    fence = lines[-1].split("\n")[0]
    assert fence == "````" and lines[-1].endswith("\n````")       # a sample's ``` cannot close the block


# ---------------------------------------------------------------- 4. distinct-n and novelty for streams

def test_distinct_n_and_novelty_are_left_out_for_text_streams(tmp_path):
    stream = tmp_path / "stream.txt"
    stream.write_text(" ".join(s for s in poems(200, ansi=False)), encoding="utf-8")
    run, _ = train_tiny(tmp_path, f"text:{stream}", "stream", block_size=32)
    code, out, _ = cli("eval", str(run), "--n", "8", "--quiet")
    assert code == 0
    scores = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    assert "nll" in scores and scores["samples"] == 8
    assert not {"novelty", "distinct_1", "distinct_2", "distinct_3"} & set(scores)
    assert scores["note"].startswith("novelty and distinct-n left out: for a text: source")
    assert not re.search(r"^(novelty|distinct_\d)\s", out, re.M) and "novelty and distinct-n left out" in out

    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.metrics.text import sample_metrics

    lines = load_dataset(DataConfig(source=f"lines:{write_lines(tmp_path / 'l.txt', poems(50, ansi=False))}"))
    kept = sample_metrics(["ветер луна", "снег"], lines)
    assert {"novelty", "distinct_1", "distinct_2", "distinct_3"} <= set(kept) and "note" not in kept


# ---------------------------------------------------------------- 5. tiny image sets, unbuildable sizes

def image_folder(root: Path, n: int, side: int) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(root / f"{i:03d}.png")
    return root


def test_image_audit_warns_on_a_tiny_set_of_a_size_the_dcgan_refuses(tmp_path):
    folder = image_folder(tmp_path / "imgs", 100, 25)
    code, out, _ = cli("data", "audit", f"folder:{folder}", "--out", str(tmp_path / "a"))
    assert code == 0 and "No problems found" not in out
    assert "cannot build 25x25 images" in out and "--set data.image_size=28" in out
    assert "Tiny dataset: 90 training images (10 of the 100 are held out by data.test_fraction)" in out
    assert "held-out set has only 10 images" in out
    report = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    assert report["training"] == {"train_images": 90, "held_out_images": 10, "held_out_from_train": 10,
                                  "side": 25, "conv_buildable": False, "conv_sides_near": [24, 28]}
    assert "data.image_size=28" in (tmp_path / "a" / "report.md").read_text(encoding="utf-8")

    # the DCGAN does refuse it, and the size the audit names is one it builds
    code, _, err = cli("train", "fashion-dcgan", "--set", f"data.source=folder:{folder}", "--steps", "1",
                       "--out", str(tmp_path / "r"), "--quiet")
    assert code == 2 and "cannot build 25x25" in err
    code, out, _ = cli("data", "audit", f"folder:{folder}", "--image-size", "28", "--out", str(tmp_path / "b"))
    assert code == 0 and "cannot build" not in out and "Tiny dataset" in out


@pytest.mark.parametrize("side", [25, 27, 28, 32, 50, 48])
def test_the_audit_and_the_conv_families_share_one_size_rule(side):
    from aigc.errors import ConfigError
    from aigc.pixels import conv_plan
    from aigc.run import build_model

    for family in ("dcgan", "vae-conv"):
        try:
            build_model({"name": family}, {"shape": [1, side, side]})
            built = True
        except ConfigError as e:
            assert "data.image_size" in e.hint
            built = False
        assert built == (conv_plan(side) is not None), (family, side)


def test_a_dataset_of_thousands_of_buildable_images_is_not_called_tiny(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 255, (1200, 16, 16), dtype=np.uint8))
    code, out, _ = cli("data", "audit", f"npz:{tmp_path / 'd.npz'}", "--out", str(tmp_path / "a"))
    report = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and report["training"]["conv_buildable"] and report["training"]["train_images"] >= 1000
    assert "Tiny dataset" not in out and "cannot build" not in out
