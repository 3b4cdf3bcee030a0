"""Faults during training: kills at random moments, damaged checkpoints, full disks, hostile files."""
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import aigc
from aigc.config import load_config
from aigc.errors import CheckpointError, OutputError
from aigc.tensorfile import check_safetensors
from aigc.train import train
from aigc.train.checkpoint import find_checkpoint, list_checkpoints

from .conftest import tiny_gan


def final_weights(run):
    return load_file(str(list_checkpoints(run)[-1] / "model.safetensors"))


def test_sigkill_at_random_moments_then_resume_gives_identical_weights(tmp_path):
    """>= 10 SIGKILLs (checkpoints are written every step, so many land mid-write), then compare."""
    cfg = tiny_gan()
    cfg["train"].update(steps=150, ckpt_every=1, keep_last=2, log_every=10, sample_every=50)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    train(load_config(cfg), tmp_path / "reference", echo=lambda m: None)

    run = tmp_path / "killed"
    rng = random.Random(1234)
    kills, mid_write, attempts = 0, 0, 0
    cmd = [sys.executable, "-m", "aigc", "train", str(path), "--out", str(run), "--resume", "--quiet"]
    while kills < 10 and attempts < 40:
        attempts += 1
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not list_checkpoints(run) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until it trains, so the kill lands inside the loop
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is not None:
            break  # finished before we could kill it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if any((run / "checkpoints").glob(".tmp-step-*")) or any((run / "checkpoints").glob(".old-step-*")):
            mid_write += 1
    assert kills >= 10, f"only {kills} kills landed"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    a, b = final_weights(tmp_path / "reference"), final_weights(run)
    assert list_checkpoints(run)[-1].name == "step-00000150"
    assert all(torch.equal(a[k], b[k]) for k in a)
    print(f"{kills} kills, {mid_write} of them during a checkpoint write")


def test_checkpoint_without_complete_marker_is_ignored(tmp_path):
    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    latest = list_checkpoints(tmp_path / "run")[-1]
    (latest / "COMPLETE").unlink()
    assert find_checkpoint(tmp_path / "run").name == "step-00000010"
    assert aigc.load(tmp_path / "run").checkpoint.name == "step-00000010"


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_latest_checkpoint_falls_back_to_the_previous(tmp_path, damage):
    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    f = list_checkpoints(tmp_path / "run")[-1] / "model.safetensors"
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-10] ^= 0x01
    f.write_bytes(bytes(data))
    warnings = []
    assert find_checkpoint(tmp_path / "run", warn=warnings.append).name == "step-00000010"
    assert "checksum" in warnings[0]
    result = train(load_config(tiny_gan()), tmp_path / "run", resume=True, echo=warnings.append)
    assert result.step == 20 and any("resuming" in w and "step-00000010" in w for w in warnings)


def test_unwritable_output_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write .*file/run: Not a directory"):
        train(load_config(tiny_gan()), blocker / "run", echo=lambda m: None)


# ---------------------------------------------------------------- files from strangers

def _header_file(path, header: dict, body: bytes = b"") -> None:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + body)


@pytest.mark.parametrize("header, body, words", [
    ({"w": {"dtype": "F32", "shape": [10**12, 10**6], "data_offsets": [0, 16]}}, b"\0" * 16, "more data than"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}}, b"\0" * 16, "more data than"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "malformed"),
    ({"w": "nonsense"}, b"", "malformed"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}, b"\0" * 4, "malformed"),
])
def test_lying_safetensors_headers_are_refused_before_allocation(tmp_path, header, body, words):
    f = tmp_path / "evil.safetensors"
    _header_file(f, header, body)
    with pytest.raises(CheckpointError, match=words):
        check_safetensors(f)


def test_huge_header_and_truncated_files_are_refused(tmp_path):
    f = tmp_path / "huge.safetensors"
    f.write_bytes(struct.pack("<Q", 1 << 50) + b"{}")
    with pytest.raises(CheckpointError, match="header of"):
        check_safetensors(f)
    f.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="truncated"):
        check_safetensors(f)


def test_an_honest_safetensors_file_passes(tmp_path):
    f = tmp_path / "ok.safetensors"
    save_file({"w": torch.ones(3, 4)}, str(f))
    check_safetensors(f)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".bin"])
def test_pickle_files_are_refused_with_the_reason(tmp_path, suffix):
    f = tmp_path / f"model{suffix}"
    f.write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="never unpickles"):
        aigc.load(f)


def test_checkpoint_names_cannot_escape_the_run(tmp_path):
    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        aigc.load(tmp_path / "run", checkpoint="../../run/checkpoints/step-00000020")


def test_run_names_cannot_escape_runs(tmp_path):
    from aigc.cli import main

    cfg = tiny_gan()
    cfg["name"] = "../../escape"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["train", str(path)]) == 2
    finally:
        os.chdir(cwd)
    assert not (tmp_path.parent / "escape").exists()
