"""Standard Inception FID: used only with weights the user supplies, refused clearly otherwise."""
from __future__ import annotations

import pytest
import torch

from aigc.errors import CheckpointError
from aigc.metrics.inception import InceptionFeatures, fid_inception


def test_weights_in_the_fid_layout_load_and_give_2048_features(tmp_path):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(fid_inception().state_dict(), path)  # same keys and shapes as the published file
    net = InceptionFeatures(path)
    f = net((torch.rand(2, 1, 28, 28) * 255).to(torch.uint8))
    assert f.shape == (2, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all()


def test_a_file_of_another_network_is_refused_in_one_line(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="does not fit the FID Inception-v3"):
        InceptionFeatures(path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read Inception weights"):
        InceptionFeatures(tmp_path / "junk.pth")
