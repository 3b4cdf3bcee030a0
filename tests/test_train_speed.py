"""Speed switches of the trainer (train.precision, train.compile) keep runs exact and resumable."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from aigc.config import load_config
from aigc.errors import ConfigError
from aigc.train import train

TINY = ["data.source=digits", "train.steps=6", "train.batch_size=32", "train.log_every=2", "train.sample_every=0",
        "train.ckpt_every=3", "train.progress=false", "train.threads=1"]

TINY_DCGAN = {"name": "tiny-dcgan", "seed": 0, "data": {"source": "digits"},
              "model": {"name": "dcgan", "channels": 8, "z_dim": 8}, "train": {}}


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(sorted((run_dir / "checkpoints").glob("step-*"))[-1] / "model.safetensors"))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_gives_byte_identical_weights(tmp_path, precision):
    cfg = load_config("digits-gan", TINY + [f"train.precision={precision}"])
    train(cfg, tmp_path / "once", echo=lambda m: None)
    half = load_config("digits-gan", TINY + [f"train.precision={precision}", "train.steps=3"])
    train(half, tmp_path / "twice", echo=lambda m: None)
    train(cfg, tmp_path / "twice", resume=True, echo=lambda m: None)
    a, b = _weights(tmp_path / "once"), _weights(tmp_path / "twice")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("channels_last", [True, False])
def test_conv_gan_resumes_byte_identical_in_either_memory_layout(tmp_path, channels_last):
    """NHWC conv weights are saved contiguous and the Adam moments get their layout back on resume."""
    over = TINY + [f"train.channels_last={channels_last}"]
    cfg = load_config(TINY_DCGAN, over)
    train(cfg, tmp_path / "once", echo=lambda m: None)
    train(load_config(TINY_DCGAN, over + ["train.steps=3"]), tmp_path / "twice", echo=lambda m: None)
    train(cfg, tmp_path / "twice", resume=True, echo=lambda m: None)
    a, b = _weights(tmp_path / "once"), _weights(tmp_path / "twice")
    assert any(v.dim() == 4 for v in a.values())  # the net really has conv weights
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_channels_last_changes_only_rounding(tmp_path):
    train(load_config(TINY_DCGAN, TINY), tmp_path / "nhwc", echo=lambda m: None)
    train(load_config(TINY_DCGAN, TINY + ["train.channels_last=false"]), tmp_path / "nchw", echo=lambda m: None)
    a, b = _weights(tmp_path / "nhwc"), _weights(tmp_path / "nchw")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_bf16_changes_numerics_slightly_not_the_model(tmp_path):
    fp32 = load_config("digits-gan", TINY)
    bf16 = load_config("digits-gan", TINY + ["train.precision=bf16"])
    train(fp32, tmp_path / "fp32", echo=lambda m: None)
    train(bf16, tmp_path / "bf16", echo=lambda m: None)
    a, b = _weights(tmp_path / "fp32"), _weights(tmp_path / "bf16")
    assert any(not torch.equal(a[k], b[k]) for k in a)  # autocast really ran in bf16
    assert all(a[k].dtype == b[k].dtype == torch.float32 for k in a)  # weights stay fp32
    drift = max((a[k] - b[k]).abs().max().item() for k in a)
    assert drift < 1e-2  # six Adam steps of lr 2e-4 move a weight by ~1e-3 at most


def test_unknown_precision_is_one_clear_error():
    with pytest.raises(ConfigError, match="train.precision"):
        load_config("digits-gan", ["train.precision=fp16"])
