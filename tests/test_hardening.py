"""What a hostile user and a full disk found, one test per class of defect, on the real code path:
real safetensors on a real full tmpfs, real signals, real concurrent processes, real files."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file

import aigc
from aigc.cli import main
from aigc.config import load_config
from aigc.errors import CheckpointError, ConfigError, DataError, OutputError
from aigc.train import train
from aigc.train.checkpoint import list_checkpoints

from .conftest import ROOT, tiny_gan


def env() -> dict[str, str]:
    """The environment now (the test's own cache), for a child process."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=timeout,
                          env=env())


def one_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """The process failed with exit 2 and exactly one line on stderr that holds every word."""
    err = done.stderr.strip()
    assert done.returncode == 2, (done.returncode, err[-2000:])
    assert err.count("\n") == 0 and err.startswith("error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err


def write_cfg(path: Path, **model) -> Path:
    path.write_text(yaml.safe_dump(tiny_gan(**model)))
    return path


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MB tmpfs (root may mount; elsewhere the test is skipped)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                                          capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path, leave: int) -> None:
    """Fill the file system, then give back `leave` bytes."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    size = (disk / "filler").stat().st_size
    os.truncate(disk / "filler", max(0, size - leave))


# ---------------------------------------------------------------- 1. a full disk


def test_a_full_disk_is_one_line_and_keeps_every_checkpoint(small_disk, tmp_path):
    cfg = write_cfg(tmp_path / "cfg.yaml", g_hidden=[256], d_hidden=[256])  # ~0.4 MB a checkpoint
    run = small_disk / "run"
    assert cli("train", str(cfg), "--out", str(run), "--quiet").returncode == 0
    before = {c.name: load_file(str(c / "model.safetensors")) for c in list_checkpoints(run)}
    fill(small_disk, leave=150_000)
    err = one_line(cli("train", str(cfg), "--out", str(run), "--resume", "--steps", "40", "--quiet"),
                   "No space left on device")
    assert "checkpoint" in err or "cannot write" in err
    after = {c.name: load_file(str(c / "model.safetensors")) for c in list_checkpoints(run)}
    assert sorted(after) == sorted(before)
    assert all(torch.equal(before[n][k], after[n][k]) for n in before for k in before[n])
    assert not list((run / "checkpoints").glob(".tmp-*"))
    # sampling into the full disk: one line, no half-written file
    fill(small_disk, leave=0)
    one_line(cli("sample", str(run), "--n", "64", "--format", "npz", "--out", str(small_disk / "s.npz")),
             "No space left on device")
    assert not list(small_disk.glob("*.npz")) and not list(small_disk.glob(".*tmp*"))
    # and with room again, the run resumes from where it was
    (small_disk / "filler").unlink()
    assert cli("train", str(cfg), "--out", str(run), "--resume", "--steps", "30", "--quiet").returncode == 0


# ---------------------------------------------------------------- 2. two trainings, one folder


def test_a_second_training_of_the_same_folder_is_refused_naming_the_first(tmp_path):
    cfg = tiny_gan()
    cfg["train"].update(steps=4000, ckpt_every=500, log_every=500, sample_every=0)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "aigc", "train", str(path), "--out", str(run), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + 120
    while not list_checkpoints(run) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = cli("train", str(path), "--out", str(run), "--resume", "--quiet")
    third = cli("train", str(path), "--out", str(run), "--quiet")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    one_line(second, "being trained by another process", f"pid {first.pid}")
    one_line(third, "being trained by another process")
    assert list_checkpoints(run)[-1].name == "step-00004000"
    assert cli("train", str(path), "--out", str(run), "--resume", "--steps", "4010", "--quiet").returncode == 0


# ---------------------------------------------------------------- 3. run-folder JSON is checked


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "r"
    cfg = tiny_gan(conditional=True)
    cfg["train"].update(keep_last=5)
    train(load_config(cfg), run, echo=lambda m: None)
    return run


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def rewrite_state(ckpt: Path, edit, reseal: bool) -> None:
    """Edit state.json; with reseal, also write the matching COMPLETE (an attacker who knows the scheme)."""
    state = json.loads((ckpt / "state.json").read_text())
    edit(state)
    raw = json.dumps(state).encode()
    (ckpt / "state.json").write_bytes(raw)
    if reseal:
        (ckpt / "COMPLETE").write_text(f"state.json sha256 {hashlib.sha256(raw).hexdigest()}\n")


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.update(step="ten"), "'step' is 'ten'"),
    (lambda s: s.update(lr_scale=0), "'lr_scale' is 0"),
    (lambda s: s.update(ema_updates={"G": -4}), "'ema_updates'"),
    (lambda s: s.update(best=[1]), "'best'"),
    (lambda s: s.pop("sha256"), "'sha256' must list exactly"),
    (lambda s: s["sha256"].pop("model.safetensors"), "'sha256' must list exactly"),
    (lambda s: s["sha256"].update({"../../r/x": "0" * 64}), "'sha256' must list exactly"),
])
def test_state_json_is_covered_by_the_checksum_and_checked(run_dir, tmp_path, edit, words):
    newest = list_checkpoints(run_dir)[-1].name
    for reseal, expect in ((False, "does not match the checksum in COMPLETE"), (True, words)):
        run = copy_run(run_dir, tmp_path / f"r{reseal}")
        rewrite_state(run / "checkpoints" / newest, edit, reseal)
        with pytest.raises(CheckpointError, match=expect.replace("[", r"\[")):
            aigc.load(run, newest)


@pytest.mark.parametrize("meta, words", [
    ({"shape": [1, 100000, 100000]}, "'shape'"),
    ({"shape": "28x28"}, "'shape'"),
    ({"class_names": 5}, "'class_names'"),
    ({"class_names": ["a"] * 20000}, "'class_names'"),
    ({"num_classes": -1}, "'num_classes'"),
    ({"vocab": ["ab"]}, "'vocab'"),
    ({"block_size": 0}, "'block_size'"),
    ({"kind": 3}, "'kind'"),
])
def test_a_lying_data_json_is_one_line_before_any_allocation(run_dir, tmp_path, meta, words):
    run = copy_run(run_dir, tmp_path / "r")
    old = json.loads((run / "data.json").read_text())
    (run / "data.json").write_text(json.dumps({**old, **meta}))
    one_line(cli("sample", str(run), "--n", "2"), "data.json", words)


def test_a_lying_prepared_manifest_or_label_set_is_refused(tmp_path):
    out = tmp_path / "prep"
    assert main(["data", "prepare", "digits", "--out", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**m, "class_names": [1, 2]}))
    one_line(cli("data", "audit", f"prepared:{out}", "--out", str(tmp_path / "a")), "manifest.json", "'class_names'")
    (out / "manifest.json").write_text(json.dumps(m))
    splits = load_file(str(out / "data.safetensors"))
    splits["train/y"][0] = 57  # out of range for 10 classes
    save_file(splits, str(out / "data.safetensors"))
    one_line(cli("data", "audit", f"prepared:{out}", "--out", str(tmp_path / "b")), "train/y", "0..9")
    splits["train/y"][0] = 0
    splits["train/x"] = torch.zeros(len(splits["train/y"]), 5, 8, 8, dtype=torch.uint8)  # 5 channels
    save_file(splits, str(out / "data.safetensors"))
    one_line(cli("data", "audit", f"prepared:{out}", "--out", str(tmp_path / "c")), "1 or 3 channels")


# ---------------------------------------------------------------- 4. SIGTERM and SIGHUP save work


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_save_a_checkpoint_like_ctrl_c(tmp_path, sig, code):
    cfg = tiny_gan()
    cfg["train"].update(steps=100000, ckpt_every=0, log_every=100000, sample_every=0)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "aigc", "train", str(path), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + 120
    while not list_checkpoints(run) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"interrupted by {signal.Signals(sig).name}" in out
    last = list_checkpoints(run)[-1]
    step = int(last.name.split("-")[1])
    assert step > 0
    assert cli("train", str(path), "--out", str(run), "--resume", "--steps", str(step + 3),
               "--quiet").returncode == 0


# ---------------------------------------------------------------- 5. and 6. which weights are used


def test_a_damaged_newest_checkpoint_is_said_and_recorded(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path / "r")
    newest, older = list_checkpoints(run)[-1], list_checkpoints(run)[-2]
    blob = bytearray((newest / "model.safetensors").read_bytes())
    blob[-5] ^= 0xFF
    (newest / "model.safetensors").write_bytes(bytes(blob))
    done = cli("sample", str(run), "--n", "4")
    assert done.returncode == 0
    assert f"skipping damaged checkpoint {newest.name}" in done.stderr
    assert f"using the older checkpoint {older.name}" in done.stderr
    done = cli("eval", str(run), "--n", "20", "--metrics", "fid", "--no-floor", "--quiet")
    assert done.returncode == 0, done.stderr
    result = json.loads((run / "eval.json").read_text())
    assert result["checkpoint"] == older.name and result["skipped_checkpoints"] == [newest.name]
    assert f"skipping damaged checkpoint {newest.name}" in done.stderr


def test_non_finite_weights_are_never_loaded_sampled_or_measured(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path / "r")
    ckpt = list_checkpoints(run)[-1]
    weights = load_file(str(ckpt / "model.safetensors"))
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
              str(ckpt / "model.safetensors"))
    digest = hashlib.sha256((ckpt / "model.safetensors").read_bytes()).hexdigest()
    rewrite_state(ckpt, lambda s: s["sha256"].update({"model.safetensors": digest}), reseal=True)
    with pytest.raises(CheckpointError, match="non-finite weights"):
        aigc.load(run)
    one_line(cli("eval", str(run), "--n", "20", "--metrics", "fid", "--no-floor"), "non-finite weights")


# ---------------------------------------------------------------- 7. small inputs, unbounded asks


def test_small_inputs_that_ask_for_unbounded_memory_are_capped(run_dir, tmp_path):
    npz = tmp_path / "labels.npz"
    np.savez(npz, x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 2, 10**9]))
    one_line(cli("data", "audit", f"npz:{npz}", "--out", str(tmp_path / "a")), "label 1,000,000,000", "0..9,999")
    wide = tmp_path / "wide.txt"
    wide.write_text("\n".join(chr(0x10000 + i) for i in range(100_000)) + "\n", encoding="utf-8")
    one_line(cli("train", "names-rnn", "--set", f"data.source=lines:{wide}", "--out", str(tmp_path / "t")),
             "distinct characters", "65,536")
    long = tmp_path / "long.txt"
    long.write_text("short\n" + "a" * 200_000 + "\n")
    one_line(cli("train", "names-rnn", "--set", f"data.source=lines:{long}", "--out", str(tmp_path / "t")),
             "200,000 characters", "10,000")
    one_line(cli("sample", str(run_dir), "--n", "10000000", "--format", "npz"), "1 to 1,000,000")
    one_line(cli("sample", str(run_dir), "--n", "20000"), "1 to 10,000 samples as png")
    for key, value, words in (("train.threads", "1000000", "1 to 256"), ("data.image_size", "100000", "1 to 1,024"),
                              ("model.g_hidden", "[1000000000]", "model.g_hidden[0]"),
                              ("model.g_hidden", "[60000,60000]", "parameters")):
        tic = time.monotonic()
        one_line(cli("train", "digits-gan", "--set", f"{key}={value}", "--out", str(tmp_path / "t")), *words)
        assert time.monotonic() - tic < 60  # refused before anything big is allocated
    assert not (tmp_path / "t").exists()


def test_large_npz_samples_are_streamed_in_chunks(run_dir, tmp_path):
    out = tmp_path / "many.npz"
    assert main(["sample", str(run_dir), "--n", "12000", "--seed", "3", "--out", str(out)]) == 0
    with np.load(out) as f:
        x = f["x"]
    assert x.shape == (12000, 8, 8, 1) and x.dtype == np.uint8
    first = aigc.load(run_dir).sample(10240, seed=3)  # the first chunk, drawn the usual way
    assert np.array_equal(x[:10240], (first.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    assert not list(tmp_path.glob(".*parts*"))


# ---------------------------------------------------------------- 8. values that reached torch unchecked


def test_unchecked_values_are_one_line_before_torch_sees_them(tmp_path):
    for key, value, words in (("model.g_hidden", "[-5]", "model.g_hidden[0] is -5"),
                              ("model.z_dim", "0", "model.z_dim is 0"),
                              ("seed", str(2**64), "seed is"),
                              ("data.channels", "5", "data.channels is 5")):
        one_line(cli("train", "digits-gan", "--set", f"{key}={value}", "--out", str(tmp_path / "t")), *words)
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line(cli("train", str(deep)), "nested too deeply")
    for name, arrays, words in (
            ("zero.npz", {"x": np.zeros((4, 0, 8), np.uint8)}, "8x0 images"),
            ("wrap.npz", {"x": np.zeros((2, 8, 8), np.uint8), "y": np.array([0, 2**64 - 1], np.uint64)},
             "label 18,446,744,073,709,551,615"),
            ("five.npz", {"x": np.zeros((2, 8, 8, 5), np.uint8)}, "C in 1, 3, 4"),
            ("shapes.npz", {"x": np.zeros((4, 8, 8), np.uint8), "x_test": np.zeros((4, 9, 9), np.uint8)},
             "x_test holds [1, 9, 9] images")):
        np.savez(tmp_path / name, **arrays)
        one_line(cli("data", "audit", f"npz:{tmp_path / name}", "--out", str(tmp_path / "a")), *words)


# ---------------------------------------------------------------- 9. and 11. where output goes


def test_unwritable_outputs_are_refused_before_work(run_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line(cli("sample", str(run_dir), "--out", str(blocker / "s.png")), "cannot write")
    one_line(cli("sample", str(run_dir), "--out", "/proc/x.png"), "cannot write")
    one_line(cli("sample", str(run_dir), "--out", "/dev/null"), "/dev/null is not a regular file")
    assert not Path("/dev/null.png").exists()
    one_line(cli("explore", str(run_dir), "--out", str(blocker / "e")), "cannot write")
    one_line(cli("data", "prepare", "digits", "--out", str(blocker / "p")), "cannot write")
    one_line(cli("data", "audit", "digits", "--out", str(blocker / "a")), "cannot write")


def test_a_read_only_run_folder_is_one_line(small_disk, run_dir):
    run = copy_run(run_dir, small_disk / "r")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    one_line(cli("sample", str(run), "--n", "4"), "cannot write to")
    one_line(cli("explore", str(run), "--interpolate"), "cannot write to")
    one_line(cli("eval", str(run), "--n", "20"), "cannot write to")


def test_surprising_labels_and_symlinked_checkpoints(run_dir, tmp_path):
    one_line(cli("sample", str(run_dir), "--label", "-1"), "label -1 is out of range")
    assert aigc.load(run_dir).sample(2, labels="1", seed=0).shape == (2, 1, 8, 8)
    run = copy_run(run_dir, tmp_path / "r")
    other = copy_run(run_dir, tmp_path / "other")
    newest = list_checkpoints(run)[-1]
    fake = run / "checkpoints" / "step-99999999"
    fake.symlink_to(list_checkpoints(other)[-1])
    assert aigc.load(run).checkpoint == newest  # the link is not a checkpoint of this run
    one_line(cli("sample", str(run), "--checkpoint", "step-99999999"), "no complete checkpoint step-99999999")


# ---------------------------------------------------------------- 10. walking folders


def make_images(folder: Path, n: int, size: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((size, size), i * 20 % 255, np.uint8)).save(folder / f"{i}.png")


def test_folder_walks_are_bounded(tmp_path, monkeypatch):
    import aigc.data.images as images
    from aigc.config import DataConfig
    from aigc.data import load_dataset

    root = tmp_path / "imgs"
    make_images(root / "cats", 6)
    make_images(root / "dogs", 6)
    (root / "cats" / "loop").symlink_to(root)  # a symlink loop
    tic = time.monotonic()
    ds = load_dataset(DataConfig(source=f"folder:{root}", test_fraction=0.0))
    assert len(ds) == 12 and time.monotonic() - tic < 30 and ds.meta["class_names"] == ["cats", "dogs"]
    one_line(cli("data", "audit", "folder:/proc/self", "--out", str(tmp_path / "a")), "kernel file system")
    monkeypatch.setattr(images, "MAX_FOLDER_ENTRIES", 10)
    with pytest.raises(DataError, match="more than 10 files and folders"):
        load_dataset(DataConfig(source=f"folder:{root}", test_fraction=0.0, image_size=8))
    monkeypatch.setattr(images, "MAX_FOLDER_ENTRIES", 1_000_000)
    big = tmp_path / "big"
    make_images(big, 20)
    make_images(big, 1, size=300)
    (big / "0.png").rename(big / "huge.png")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 300 * 300 - 1)  # the header says 90,000 pixels
    ds = load_dataset(DataConfig(source=f"folder:{big}", test_fraction=0.0, image_size=8))
    assert len(ds) == 19 and any("huge.png: ImageTooLarge" in s for s in ds.meta["skipped"])


def test_a_stray_sub_folder_does_not_hide_the_images(tmp_path):
    from aigc.config import DataConfig
    from aigc.data import load_dataset

    root = tmp_path / "imgs"
    make_images(root, 12)
    (root / "notes").mkdir()  # no images in it
    assert len(load_dataset(DataConfig(source=f"folder:{root}", test_fraction=0.0))) == 12
    make_images(root / "cats", 3)
    with pytest.raises(DataError, match="12 images beside the class folders cats"):
        load_dataset(DataConfig(source=f"folder:{root}", test_fraction=0.0))


# ---------------------------------------------------------------- 12. YAML


def test_yaml_duplicate_keys_and_huge_configs_are_refused(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: x\ntrain:\n  steps: 5\n  steps: 500\n")
    one_line(cli("train", str(dup)), "key 'steps' is given twice", "line 4")
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n" + "# padding\n" * 200_000)
    tic = time.monotonic()
    one_line(cli("train", str(big)), "bytes", "1,048,576")
    assert time.monotonic() - tic < 30
    with pytest.raises(ConfigError, match="given twice"):
        load_config({"name": "x"}, ["model={name: dcgan, name: gan-mlp}"])


def test_output_error_is_also_an_oserror_for_cache_writers():
    assert issubclass(OutputError, OSError) and issubclass(OutputError, aigc.UserError)


def test_endless_files_and_absurd_picture_sizes_are_refused(run_dir, tmp_path):
    """From the hostile inputs tried beyond the issue's list: devices as text, giant explore grids."""
    one_line(cli("data", "audit", "text:/dev/zero", "--out", str(tmp_path / "a")), "not a regular file")
    one_line(cli("train", "names-rnn", "--set", "data.source=lines:/dev/urandom", "--out", str(tmp_path / "t")),
             "not a regular file")
    one_line(cli("explore", str(run_dir), "--steps", "1000000", "--interpolate"), "at most 100")
    (tmp_path / "afile").write_text("x")
    one_line(cli("train", "digits-gan", "--steps", "2", "--out", str(tmp_path / "afile")), "is a file, not a folder")
