"""Standard Inception FID features, for users who supply the FID Inception-v3 weights themselves.

The network is torchvision's Inception-v3 with the blocks patched as the TensorFlow FID graph
computes them (pytorch-fid's FIDInception*), so the 2015-12-05 weights used by pytorch-fid,
torch-fidelity and torchmetrics (`*inception-2015-12-05-6726825d.pth`) load with their keys unchanged. Nothing is
downloaded, and nothing is unpickled: the published .pth must be converted to safetensors once, by
the user, with the command `convert_command` gives (the error for a .pth says it).
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv

from ..errors import CheckpointError
from ..tensorfile import check_safetensors, read_tensors


def convert_command(path: str | Path) -> str:
    """The one line a user runs, where they trust the file, to turn the published .pth into safetensors."""
    src = Path(path)
    dst = src.with_suffix(".safetensors")
    code = (f"import torch, safetensors.torch as st; st.save_file(torch.load({json.dumps(str(src))}, "
            f"weights_only=True), {json.dumps(str(dst))})")
    return f"python -c {shlex.quote(code)}"


class FIDInceptionA(tv.InceptionA):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class FIDInceptionC(tv.InceptionC):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class FIDInceptionE(tv.InceptionE):
    """E_1 pools by average (padding not counted), E_2 by max, as in the TF graph."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = (F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool
                  else F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


def fid_inception() -> nn.Module:
    """Inception-v3 shaped as the FID graph (1008 classes; randomly initialised)."""
    net = tv.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = FIDInceptionA(192, 32), FIDInceptionA(256, 64), FIDInceptionA(288, 64)
    net.Mixed_6b = FIDInceptionC(768, 128)
    net.Mixed_6c, net.Mixed_6d = FIDInceptionC(768, 160), FIDInceptionC(768, 160)
    net.Mixed_6e = FIDInceptionC(768, 192)
    net.Mixed_7b, net.Mixed_7c = FIDInceptionE(1280, max_pool=False), FIDInceptionE(2048, max_pool=True)
    return net


def check_weights_file(path: str | Path) -> None:
    """Refuse a pickle unopened (with the conversion command) or a safetensors file whose header lies."""
    check_safetensors(Path(path), pickle_hint=f"convert it once, where you trust the file: {convert_command(path)}")


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights from a safetensors file; a pickle (.pth) is refused, with the command that converts it."""
    check_weights_file(path)
    return read_tensors(Path(path))


class InceptionFeatures:
    """Images (uint8 or float [0, 1], any size, 1 or 3 channels) -> 2048-d pool features (float64)."""

    def __init__(self, weights: str | Path):
        self.net = fid_inception()
        state = read_weights(weights)
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{weights} does not fit the FID Inception-v3 ({len(missing)} missing, "
                                  f"{len(unexpected)} unexpected keys)",
                                  "use the pt_inception-2015-12-05 weights of pytorch-fid / torch-fidelity")
        self.net.eval()
        self.name = f"inception-v3-fid ({Path(weights).name})"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch: int = 50) -> torch.Tensor:
        out = []
        for chunk in images.split(batch):
            x = chunk.float() / 255.0 if chunk.dtype == torch.uint8 else chunk.float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
            n = self.net
            for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1,
                          n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a,
                          n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
                x = layer(x)
            out.append(F.adaptive_avg_pool2d(x, 1).flatten(1).double())
        return torch.cat(out) if out else torch.empty(0, 2048, dtype=torch.float64)
