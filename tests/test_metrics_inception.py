"""Standard Inception FID: used only with weights the user supplies, refused clearly otherwise."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from aigc.errors import CheckpointError
from aigc.metrics.inception import InceptionFeatures, fid_inception


def test_weights_in_the_fid_layout_load_and_give_2048_features(tmp_path):
    path = tmp_path / "pt_inception-2015-12-05.safetensors"
    save_file(fid_inception().state_dict(), str(path))  # same keys and shapes as the published file
    net = InceptionFeatures(path)
    f = net((torch.rand(2, 1, 28, 28) * 255).to(torch.uint8))
    assert f.shape == (2, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all()


def test_a_file_of_another_network_is_refused_in_one_line(tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_file({"conv1.weight": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="does not fit the FID Inception-v3"):
        InceptionFeatures(path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        InceptionFeatures(tmp_path / "junk.safetensors")


def test_the_published_pth_is_refused_unopened_with_the_conversion_command(tmp_path, monkeypatch):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"w": torch.zeros(1)}, path)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a user's file was unpickled"))
    with pytest.raises(CheckpointError, match="never unpickles") as e:
        InceptionFeatures(path)
    assert f'st.save_file(torch.load("{path}", weights_only=True)' in str(e.value)  # their own file, to paste


def test_the_eval_section_uses_the_weights_when_given_and_says_skipped_otherwise(tmp_path):
    from aigc.data import Dataset
    from aigc.metrics.features import FeatureNet, Features
    from aigc.metrics.image_eval import ImageEvalContext, run_sections

    g = torch.Generator().manual_seed(0)
    real = (torch.rand(3, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    fake = (torch.rand(3, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    data = Dataset("t", "image", {"x": real}, {"x": real}, {"source": "npz:t.npz", "shape": [1, 28, 28]})
    feats = Features(FeatureNet(1, 0, decoder=True), {"name": "t"})
    ctx = ImageEvalContext(data, feats, fake, real, "test")
    (skipped,) = run_sections(ctx, ["inception-fid"])
    assert skipped.values == {} and "skipped" in skipped.note and "never faked" in skipped.note
    path = tmp_path / "pt_inception-2015-12-05.safetensors"
    save_file(fid_inception().state_dict(), str(path))
    ctx.options["inception_weights"] = str(path)
    (section,) = run_sections(ctx, ["inception-fid"])
    assert section.values["inception_fid"] > 0 and section.features.startswith("inception-v3-fid")
