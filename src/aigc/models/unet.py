"""A small U-Net for diffusion and flow matching: residual blocks with GroupNorm and SiLU, a sinusoidal
time embedding added in every block, self-attention at the lowest resolution, and an optional class
embedding (with one extra "no label" class for classifier-free guidance). Images whose side does not
halve cleanly are padded (28 -> 32) and cropped back; `patch` p runs the network on p x p patches
folded into channels (pixel_unshuffle), p*p times fewer positions for large pictures (spectrograms)."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .capabilities import embed_labels


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of (float) times t [n] -> [n, dim], as in the transformer and DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float().unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def norm_groups(c: int) -> int:
    return math.gcd(c, 8) or 1


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(norm_groups(cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(norm_groups(cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(e))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return h + self.skip(x)


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of a (small) feature map, with a residual."""

    def __init__(self, c: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups(c), c)
        self.attn = nn.MultiheadAttention(c, heads if c % heads == 0 else 1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)  # [n, h*w, c]
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class UNet(nn.Module):
    """(x [n, C, H, W], t [n] float, y [n] int64 or None) -> a tensor shaped like x."""

    def __init__(self, channels: int, widths: list[int], *, blocks: int = 1, attention: bool = True,
                 num_classes: int = 0, dropout: float = 0.0, side: int = 28, patch: int = 1,
                 block: Callable[[int, int, int, float], ResBlock] | None = None,
                 mid_attention: Callable[[int], nn.Module] | None = None):
        super().__init__()
        block = block or ResBlock  # a factory (cin, cout, emb, dropout) -> a ResBlock (video: with time mixing)
        levels = len(widths)
        self.patch = patch  # p x p pixels become p*p channels of one (as in DiT): the network runs at side / p
        side, channels = side // patch, channels * patch * patch
        self.pad = (-side) % (2 ** (levels - 1))  # pad so every level halves exactly (28 -> 32 for 3 levels)
        emb = widths[0] * 4
        self.emb_dim = widths[0]
        self.time = nn.Sequential(nn.Linear(widths[0], emb), nn.SiLU(), nn.Linear(emb, emb))
        self.num_classes = num_classes
        self.label = nn.Embedding(num_classes + 1, emb) if num_classes else None  # index num_classes: no label
        self.stem = nn.Conv2d(channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [widths[0]], widths[0]
        for i, w in enumerate(widths):
            for _ in range(blocks):
                self.down.append(block(c, w, emb, dropout))
                c = w
                skips.append(c)
            if i + 1 < levels:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1, self.mid2 = block(c, c, emb, dropout), block(c, c, emb, dropout)
        self.mid_attn = (mid_attention or Attention)(c) if attention else nn.Identity()
        self.up = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(block(c + skips.pop(), w, emb, dropout))
                c = w
            if i > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.out = nn.Sequential(nn.GroupNorm(norm_groups(c), c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.patch > 1:
            return F.pixel_shuffle(self.unpatched(F.pixel_unshuffle(x, self.patch), t, y), self.patch)
        return self.unpatched(x, t, y)

    def unpatched(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        side = x.shape[-1]
        if self.pad:
            x = F.pad(x, (0, self.pad, 0, self.pad))
        e = self.time(timestep_embedding(t, self.emb_dim))
        if self.label is not None:
            e = e + embed_labels(self.label, torch.full((len(x),), self.num_classes, dtype=torch.int64) if y is None else y)
        h = self.stem(x)
        hs = [h]
        for m in self.down:
            h = m(h, e) if isinstance(m, ResBlock) else m(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, e)), e)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, hs.pop()], 1), e)
            else:
                h = m(h)
        out = self.out(h)
        return out[..., :side, :side] if self.pad else out
