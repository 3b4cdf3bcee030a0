"""Recurrent character models: the document's Elman RNN, GRU and LSTM (multi-layer, dropout)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..limits import MAX_LAYERS, MAX_WIDTH, check_sizes
from ..plugins import MODELS
from .autoregressive import CharLM, TextModelConfig

ACTIVATIONS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


@dataclass
class RecurrentConfig(TextModelConfig):
    embed: int = 64                  # character embedding width
    hidden: int = 128                # hidden state width
    layers: int = 1

    def check(self) -> None:
        super().check()
        check_sizes(self, "model", ("embed", "hidden"), MAX_WIDTH, ConfigError)
        check_sizes(self, "model", ("layers",), MAX_LAYERS, ConfigError)


@dataclass
class ElmanConfig(RecurrentConfig):
    activation: str = "tanh"         # tanh | sigmoid (the document's f) | relu

    def check(self) -> None:
        super().check()
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"model.activation is '{self.activation}'", "use tanh, sigmoid or relu")


class Elman(nn.Module):
    """h_t = f(W_x x_t + b_x + W_h h_{t-1} + b_h), stacked; the same maths as nn.RNN, any f.

    Used for the sigmoid the document names (nn.RNN offers only tanh and relu); the input
    projection runs over all time steps at once, only the recurrence loops.
    """

    def __init__(self, input_size: int, hidden: int, layers: int, activation: str, dropout: float):
        super().__init__()
        self.ih = nn.ModuleList(nn.Linear(input_size if i == 0 else hidden, hidden) for i in range(layers))
        self.hh = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.f = ACTIVATIONS[activation]
        self.drop = nn.Dropout(dropout)
        for lin in [*self.ih, *self.hh]:  # nn.RNN's initialisation: U(-1/sqrt(hidden), 1/sqrt(hidden))
            nn.init.uniform_(lin.weight, -hidden ** -0.5, hidden ** -0.5)
            nn.init.uniform_(lin.bias, -hidden ** -0.5, hidden ** -0.5)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch, hidden = x.shape[0], self.hh[0].in_features
        finals = []
        for i, (ih, hh) in enumerate(zip(self.ih, self.hh, strict=True)):
            if i:
                x = self.drop(x)
            h = h0[i] if h0 is not None else x.new_zeros(batch, hidden)
            pre = ih(x)
            outs = []
            for t in range(x.shape[1]):
                h = self.f(pre[:, t] + hh(h))
                outs.append(h)
            x = torch.stack(outs, 1)
            finals.append(h)
        return x, torch.stack(finals)


class RecurrentLM(CharLM):
    """Embedding -> recurrent layers -> linear read-out of the next character."""

    Config = RecurrentConfig

    def __init__(self, cfg: RecurrentConfig, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.embed = nn.Embedding(self.vocab_size, cfg.embed)
        self.rnn = self.build_rnn(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, self.vocab_size)

    def build_rnn(self, cfg: Any) -> nn.Module:
        raise NotImplementedError

    def forward(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        out, state = self.rnn(self.drop(self.embed(idx)), state)
        return self.head(self.drop(out)), state


def _between(cfg: RecurrentConfig) -> float:
    return cfg.dropout if cfg.layers > 1 else 0.0  # torch's dropout acts only between layers


@MODELS.register("rnn")
class ElmanLM(RecurrentLM):
    """The document's recurrent network, h_t = f(W_h h_{t-1} + W_x x_t + b)."""

    Config = ElmanConfig

    def build_rnn(self, cfg: ElmanConfig) -> nn.Module:
        if cfg.activation == "sigmoid":
            return Elman(cfg.embed, cfg.hidden, cfg.layers, cfg.activation, _between(cfg))
        return nn.RNN(cfg.embed, cfg.hidden, cfg.layers, nonlinearity=cfg.activation, batch_first=True,
                      dropout=_between(cfg))


@MODELS.register("gru")
class GRULM(RecurrentLM):
    def build_rnn(self, cfg: RecurrentConfig) -> nn.Module:
        return nn.GRU(cfg.embed, cfg.hidden, cfg.layers, batch_first=True, dropout=_between(cfg))


@MODELS.register("lstm")
class LSTMLM(RecurrentLM):
    def build_rnn(self, cfg: RecurrentConfig) -> nn.Module:
        return nn.LSTM(cfg.embed, cfg.hidden, cfg.layers, batch_first=True, dropout=_between(cfg))
