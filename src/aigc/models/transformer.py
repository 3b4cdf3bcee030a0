"""A decoder-only Transformer (causal self-attention, pre-LayerNorm) with a key/value cache for sampling."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..limits import MAX_LAYERS, MAX_WIDTH, check_sizes
from ..plugins import MODELS
from .autoregressive import CharLM, TextModelConfig


@dataclass
class TransformerConfig(TextModelConfig):
    layers: int = 4
    heads: int = 4
    width: int = 64                  # embedding width (d_model); the MLP is 4x wider
    tie_weights: bool = True         # the read-out shares the token embedding matrix
    bias: bool = True                # biases in linear layers and LayerNorms

    def check(self) -> None:
        super().check()
        check_sizes(self, "model", ("width",), MAX_WIDTH, ConfigError)
        check_sizes(self, "model", ("layers", "heads"), MAX_LAYERS, ConfigError)
        if self.width % self.heads:
            raise ConfigError(f"model.width {self.width} is not a multiple of model.heads {self.heads}",
                              "e.g. width 64 with 4 heads")


class KVCache:
    """Keys and values of the tokens seen so far, preallocated for the whole context."""

    def __init__(self, layers: int, batch: int, heads: int, context: int, head_dim: int):
        self.k = torch.zeros(layers, batch, heads, context, head_dim)
        self.v = torch.zeros_like(self.k)
        self.length = 0


class SelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=cfg.bias)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=cfg.bias)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in self.qkv(x).split(c, 2))
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        else:
            p = cache.length
            cache.k[layer, :, :, p:p + t] = k
            cache.v[layer, :, :, p:p + t] = v
            keys, values = cache.k[layer, :, :, :p + t], cache.v[layer, :, :, :p + t]
            # query i sits at position p + i and may see keys 0..p + i
            mask = None if t == 1 else torch.ones(t, p + t, dtype=torch.bool).tril(diagonal=p)
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.width, bias=cfg.bias)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.width, bias=cfg.bias)
        self.mlp = nn.Sequential(nn.Linear(cfg.width, 4 * cfg.width, bias=cfg.bias), nn.GELU(),
                                 nn.Linear(4 * cfg.width, cfg.width, bias=cfg.bias))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), cache, layer))
        return x + self.drop(self.mlp(self.ln2(x)))


@MODELS.register("transformer")
class TransformerLM(CharLM):
    """Token + learned position embeddings, pre-LN blocks, a final LayerNorm, a (tied) read-out."""

    Config = TransformerConfig

    def __init__(self, cfg: TransformerConfig, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.max_context = self.block_size
        self.tok = nn.Embedding(self.vocab_size, cfg.width)
        self.pos = nn.Embedding(self.block_size, cfg.width)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(cfg.width, bias=cfg.bias)
        self.head = nn.Linear(cfg.width, self.vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.layers))
        if cfg.tie_weights:
            self.head.weight = self.tok.weight

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def init_state(self, batch: int) -> KVCache:
        c = self.cfg
        return KVCache(c.layers, batch, c.heads, self.block_size, c.width // c.heads)

    def forward(self, idx: torch.Tensor, state: KVCache | None = None) -> tuple[torch.Tensor, KVCache | None]:
        start = state.length if state is not None else 0
        t = idx.shape[1]
        if start + t > self.block_size:
            raise ValueError(f"{start + t} tokens exceed the context of {self.block_size}")
        x = self.drop(self.tok(idx) + self.pos(torch.arange(start, start + t)))
        for i, block in enumerate(self.blocks):
            x = block(x, state, i)
        if state is not None:
            state.length += t
        return self.head(self.ln(x)), state
