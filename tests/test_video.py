"""Video: generated bouncing clips, a folder of GIFs, the space-time flow, GIF/npz output and the clip metrics."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import aigc
from aigc.config import DataConfig, load_config
from aigc.data import load_dataset
from aigc.data.video import Layout, bounce_paths, moving_clips
from aigc.errors import ConfigError, DataError
from aigc.metrics.video import centres, motion, motion_scores
from aigc.models.video import SpaceTimeUNet
from aigc.train import train

from .conftest import run_cli

TINY = {  # a videoflow small enough to train a few steps in seconds
    "name": "tiny-video", "seed": 0,
    "data": {"source": "moving:digits", "image_size": 16, "frames": 4, "item_size": 8, "clips": 96,
             "speed": [1, 2]},
    "model": {"name": "videoflow", "widths": [8, 16], "conditional": True, "guidance": 1.5, "sample_steps": 2},
    "train": {"steps": 4, "batch_size": 4, "log_every": 2, "sample_every": 2, "ckpt_every": 2, "progress": False,
              "threads": 1},
}


def test_bouncing_paths_stay_inside_keep_their_speed_and_reflect_off_the_walls():
    lay = Layout(side=32, frames=40, items=2, item_size=12, speed=(2.0, 3.0), clips=1, fps=8)
    p = bounce_paths(500, lay, torch.Generator().manual_seed(0))
    assert p.shape == (500, 2, 40, 2) and p.min() >= 0 and p.max() <= 32 - 12
    step = p.diff(dim=2).abs()
    assert step.max() <= 3 + 1  # at most the top speed per axis, plus rounding (a fold keeps |velocity|)
    # over 40 frames of up to 3 px in a 20-px room every item meets a wall: a coordinate turns back
    turned = (p.diff(dim=2)[..., 1:, :] * p.diff(dim=2)[..., :-1, :] < 0).any(2).any(-1)
    assert turned.float().mean() > 0.9
    again = bounce_paths(500, lay, torch.Generator().manual_seed(0))
    assert torch.equal(p, again)


def test_moving_clips_carry_their_items_class_and_combine_overlaps_by_maximum():
    lay = Layout(side=16, frames=6, items=1, item_size=4, speed=(1.0, 2.0), clips=50, fps=8)
    items = (torch.arange(10, dtype=torch.uint8) * 20 + 20).view(10, 1, 1, 1).expand(10, 1, 4, 4).contiguous()
    labels = torch.arange(10)
    out = moving_clips(items, labels, 50, lay, seed=1)
    x, y = out["x"], out["y"]
    assert x.shape == (50, 6, 1, 16, 16)
    # every frame shows exactly the 4x4 item of the labelled class, nothing else
    assert torch.equal(x.amax((1, 2, 3, 4)), (y * 20 + 20).to(torch.uint8))
    assert ((x > 0).sum((2, 3, 4)) == 16).all()
    two = moving_clips(items, labels, 50, Layout(16, 6, 2, 4, (1.0, 2.0), 50, 8), seed=1)
    assert "y" not in two and two["classes"].shape == (50, 2)
    assert torch.equal(two["x"].amax((1, 2, 3, 4)), (two["classes"].amax(1) * 20 + 20).to(torch.uint8))


def test_moving_sources_are_deterministic_and_offer_the_moving_mnist_layout(tmp_path, monkeypatch):
    cfg = DataConfig(source="moving:digits", clips=40)
    a = load_dataset(cfg)
    monkeypatch.setenv("AIGC_CACHE", str(tmp_path / "elsewhere"))  # built again from nothing
    b = load_dataset(cfg)
    assert torch.equal(a.train["x"], b.train["x"]) and torch.equal(a.train["y"], b.train["y"])
    assert a.modality == "video" and a.train["x"].shape == (40, 16, 1, 32, 32) and a.test["x"].shape == (8, 16, 1, 32, 32)
    assert a.meta["class_names"] == [str(i) for i in range(10)] and a.meta["fps"] == 8
    mm = load_dataset(DataConfig(source="moving:digits", image_size=64, frames=20, items=2, item_size=28, clips=10))
    assert mm.train["x"].shape == (10, 20, 1, 64, 64) and mm.train["classes"].shape == (10, 2)
    assert "class_names" not in mm.meta  # two items a clip: no single label to condition on


@pytest.mark.parametrize("field, value, says", [
    ("frames", 1, "data.frames is 1"), ("items", 9, "data.items is 9"), ("speed", [3, 1], "data.speed"),
    ("item_size", 40, "data.item_size is 40"), ("clips", 0, "data.clips is 0"),
])
def test_impossible_clip_layouts_are_one_line(field, value, says):
    with pytest.raises(ConfigError, match=says):
        DataConfig(source="moving:digits", **{field: value}).check()


def _gif(path, frames, size=(20, 24), color=None):
    pics = []
    for i in range(frames):
        img = Image.new("RGB", size, (0, 0, 0))
        img.paste(color or (255, 255, 255), (i % size[0], 2, i % size[0] + 4, 6))
        pics.append(img)
    pics[0].save(path, save_all=True, append_images=pics[1:], duration=125, loop=0)


def test_a_folder_of_gifs_becomes_labelled_windows_and_bad_files_are_listed(tmp_path):
    for cls, color in (("left", (255, 0, 0)), ("right", (0, 255, 0))):
        (tmp_path / cls).mkdir()
        for i in range(6):
            _gif(tmp_path / cls / f"{i}.gif", 9, color=color)  # 9 frames: two windows of 4, one left over
    (tmp_path / "left" / "broken.gif").write_bytes(b"GIF89a not really")
    _gif(tmp_path / "right" / "short.gif", 3)
    ds = load_dataset(DataConfig(source=f"clips:{tmp_path}", frames=4, image_size=16, test_fraction=0.25))
    n = len(ds.train["x"]) + len(ds.test["x"])
    assert n == 12 * 2 and ds.train["x"].shape[1:] == (4, 3, 16, 16)
    assert ds.meta["class_names"] == ["left", "right"] and ds.meta["fps"] == 8
    assert any("broken.gif" in s for s in ds.meta["skipped"]) and any("short.gif" in s for s in ds.meta["skipped"])
    # a file's two windows never straddle the split (the split is drawn by file)
    assert len(ds.test["x"]) % 2 == 0 and 0 < len(ds.test["x"]) < n
    red = ds.train["x"][ds.train["y"] == 0].float()
    assert (red[:, :, 0].mean() > 5 * red[:, :, 1].mean())  # the left class is the red one
    split = tmp_path / "split"
    for part, n in (("train", 3), ("test", 2)):
        (split / part / "up").mkdir(parents=True)
        for i in range(n):
            _gif(split / part / "up" / f"{i}.gif", 4)
    (split / "val" / "up").mkdir(parents=True)  # only train/ and test/ are read when both exist
    _gif(split / "val" / "up" / "x.gif", 4)
    (split / "train" / ".ipynb_checkpoints").mkdir()
    _gif(split / "train" / ".ipynb_checkpoints" / "x.gif", 4)
    ds = load_dataset(DataConfig(source=f"clips:{split}", frames=4, image_size=8))
    assert len(ds.train["x"]) == 3 and len(ds.test["x"]) == 2 and ds.meta["class_names"] == ["up"]
    (tmp_path / "mp4s").mkdir()
    (tmp_path / "mp4s" / "a.mp4").write_bytes(b"\0" * 10)
    with pytest.raises(DataError, match="MP4/WebM are not read"):
        load_dataset(DataConfig(source=f"clips:{tmp_path / 'mp4s'}"))


def test_the_space_time_unet_lets_frames_see_each_other_only_through_its_temporal_parts():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 1, 16, 16, requires_grad=True)
    t = torch.full((2,), 500.0)

    def reach(net):  # how much the first frame's output depends on the last frame's input
        x.grad = None
        net(x, t)[:, 0].sum().backward()
        return float(x.grad[:, -1].abs().sum())

    per_frame = SpaceTimeUNet(1, [8, 16], frames=6, side=16, space_time=False)
    for p in per_frame.parameters():  # temporal convolutions start at zero; give every weight a value
        if p.dim() > 0 and p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.1)
    assert reach(per_frame) > 0  # temporal convolutions carry information across frames ...
    for m in per_frame.modules():
        if type(m).__name__ == "TemporalConv":
            torch.nn.init.zeros_(m.conv.weight)
    assert reach(per_frame) == 0  # ... and without them (and without space-time attention) frames are alone
    space_time = SpaceTimeUNet(1, [8, 16], frames=6, side=16, space_time=True)
    for p in space_time.parameters():
        if p.dim() > 0 and p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.1)
    for m in space_time.modules():
        if type(m).__name__ == "TemporalConv":
            torch.nn.init.zeros_(m.conv.weight)
    assert reach(space_time) > 0  # the lowest level's attention spans frames
    x.grad = None  # ... of its own clip only: clip 0's output never depends on clip 1
    space_time(x, t)[0].sum().backward()
    assert x.grad[1].abs().sum() == 0 and x.grad[0].abs().sum() > 0


def test_the_clip_network_takes_clips_of_two_frames():
    from aigc.metrics.video import ClipNet

    f, logits, order = ClipNet(1, 3, frames=2)(torch.zeros(4, 1, 2, 32, 32))
    assert f.shape == (4, 128) and logits.shape == (4, 3) and order.shape == (4, 2)


def test_motion_measures_see_a_moving_square_a_frozen_one_and_an_identity_swap():
    clips = torch.zeros(3, 8, 1, 24, 24)
    for t in range(8):
        clips[0, t, 0, 4:8, 2 + 2 * t:6 + 2 * t] = 1.0  # 2 px a frame to the right
        clips[1, t, 0, 10:14, 10:14] = 1.0              # still
        clips[2, t, 0, 4 + t:8 + t, 4:8] = 1.0          # 1 px a frame down
    c = centres(clips)
    assert torch.allclose(c[0, :, 1].diff(), torch.full((7,), 2.0)) and torch.allclose(c[0, :, 0], torch.full((8,), 5.5))
    classes = torch.tensor([[1] * 8, [2] * 8, [3] * 4 + [4] * 4])
    m = motion(clips, classes)
    assert np.allclose(m["mean_step"], [2.0, 0.0, 1.0]) and m["changed"].tolist() == [False, False, True]
    real = motion(clips[[0]], classes[[0]])
    s = motion_scores(m, real)
    assert s["frozen"] == pytest.approx(1 / 3) and s["identity_changes"] == pytest.approx(1 / 3)
    assert motion_scores(real, real)["displacement_w1_rel"] == 0.0
    # steps of 2, 0 and 1 px against real steps of 2: W1 = (0 + 2 + 1) / 3 = 1, relative to 2
    assert s["displacement_w1_rel"] == pytest.approx(0.5)


def test_a_video_flow_trains_samples_gifs_and_npz_and_is_measured_with_its_floor(tmp_path):
    run = tmp_path / "run"
    train(load_config(TINY), run, echo=lambda m: None)
    strip = Image.open(run / "samples" / "filmstrip.png")
    gifs = sorted((run / "samples").glob("*.gif"))
    assert len(gifs) == 16 and strip.height > 16 * 16
    with Image.open(gifs[0]) as g:
        assert g.n_frames == 4 and g.is_animated
    report = (run / "report.md").read_text()
    assert "filmstrip.png" in report and ".gif" in report

    r = run_cli("sample", str(run), "--n", "3", "--label", "7", "--out", str(tmp_path / "sevens"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "sevens").glob("*.gif")) == ["000-7.gif", "001-7.gif", "002-7.gif"]
    r = run_cli("sample", str(run), "--n", "5", "--format", "npz", "--out", str(tmp_path / "s.npz"))
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "s.npz") as z:
        assert z["x"].shape == (5, 4, 16, 16, 1) and z["x"].dtype == np.uint8 and int(z["fps"]) == 8

    r = run_cli("eval", str(run), "--n", "20", "--quiet")
    assert r.returncode == 0, r.stderr
    result = json.loads((run / "eval.json").read_text())
    got = {k: v for s in result["sections"] for k, v in s["values"].items()}
    floor = {k: v for s in result["floor"]["sections"] for k, v in s["values"].items()}
    assert {"frame_fid", "clip_fd", "displacement_w1_rel", "frozen", "identity_changes", "label_accuracy"} <= set(got)
    assert floor["frozen"] == 0.0 and floor["displacement_w1_rel"] < 0.35  # real clips move like real clips
    assert got["frame_fid"] > floor["frame_fid"]  # four steps of training are far from the data
    assert "frame_fid" in r.stdout and "real floor" in r.stdout and "Evaluation" in (run / "report.md").read_text()

    # the same measures on clips made elsewhere: frozen copies of real clips are caught as frozen
    real = load_dataset(load_config(TINY).data)
    still = real.test["x"][:12, :1].expand(-1, 4, -1, -1, -1).permute(0, 1, 3, 4, 2).numpy()
    np.savez(tmp_path / "still.npz", x=still)
    r = run_cli("eval", "--samples", str(tmp_path / "still.npz"), "--real", "moving:digits", "--quiet", "--no-floor",
                "--data", "image_size=16", "--data", "frames=4", "--data", "item_size=8", "--data", "clips=96",
                "--data", "speed=[1,2]", "--out", str(tmp_path / "still.json"))
    assert r.returncode == 0, r.stderr
    still_scores = {k: v for s in json.loads((tmp_path / "still.json").read_text())["sections"]
                    for k, v in s["values"].items()}
    assert still_scores["frozen"] == 1.0 and still_scores["displacement_w1_rel"] > 0.9
    np.savez(tmp_path / "bad.npz", x=still, labels=np.array(["1", "2"]))  # 2 labels for 12 clips
    r = run_cli("eval", "--samples", str(tmp_path / "bad.npz"), "--real", "moving:digits", "--data", "clips=96",
                "--data", "image_size=16", "--data", "frames=4", "--data", "item_size=8", "--data", "speed=[1,2]")
    assert r.returncode == 2 and "labels has shape [2] for 12 clips" in r.stderr and r.stderr.count("\n") == 1

    loaded = aigc.load(run)
    video = loaded.sample(2, seed=3, labels=["3"])
    assert video.frames.shape == (2, 4, 1, 16, 16) and video.labels == ["3", "3"]


def test_video_mistakes_are_one_line(tmp_path):
    r = run_cli("train", "moving-fashion", "--out", str(tmp_path / "r"), "--set", "data.frames=1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "data.frames is 1" in r.stderr
    assert not (tmp_path / "r").exists()
    r = run_cli("train", "moving-fashion", "--out", str(tmp_path / "r"), "--set", "data.source=moving:moving:digits")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "moves clips" in r.stderr
    r = run_cli("eval", "--real", f"clips:{tmp_path / 'nowhere'}")
    assert r.returncode == 2 and "does not exist" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("eval", "--real", "moving:digits", "--data", "frmes=4")
    assert r.returncode == 2 and "did you mean 'data.frames'" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("train", "fashion-dcgan", "--out", str(tmp_path / "d"), "--set", "data.source=moving:digits",
                "--set", "data.clips=20")
    assert r.returncode == 2 and "makes image but moving:digits holds video" in r.stderr and r.stderr.count("\n") == 1
