"""The document's MLP GAN written the way a tutorial user writes it in PyTorch.

Same maths as aigc's `fashion-gan` recipe: z=100, G 128-256-512 ReLU -> tanh, D 512-256-128 ReLU
-> 1 (sigmoid + BCE), Adam(1e-4, betas 0.9/0.999), batch 64. Like the document's Keras code it
calls the generator twice per step: one `predict` for the D update and a fresh one for the G
update, feeds D real and fake batches separately, and reads each loss with `.item()`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .common import Endless, tutorial_loader


def generator(z_dim: int = 100) -> nn.Module:
    return nn.Sequential(nn.Linear(z_dim, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(),
                         nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784), nn.Tanh())


def discriminator() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 1), nn.Sigmoid())


class MLPGANTutorial:
    """`steps(n)` runs n training steps; state persists between calls."""

    def __init__(self, root: Path, batch_size: int = 64, z_dim: int = 100, seed: int = 0):
        torch.manual_seed(seed)
        self.batch_size, self.z_dim = batch_size, z_dim
        self.data = Endless(tutorial_loader(root, batch_size))
        self.G, self.D = generator(z_dim), discriminator()
        self.criterion = nn.BCELoss()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=1e-4, betas=(0.9, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=1e-4, betas=(0.9, 0.999))
        self.d_losses: list[float] = []
        self.g_losses: list[float] = []

    def step(self) -> None:
        real, _ = self.data.next()
        real = real.view(real.size(0), -1)
        b = real.size(0)
        ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

        # discriminator: real batch, then a generated batch (first generator call)
        fake = self.G(torch.randn(b, self.z_dim))
        d_loss = self.criterion(self.D(real), ones) + self.criterion(self.D(fake.detach()), zeros)
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()

        # generator: fresh noise, a second generator call, through D to the "real" label
        g_loss = self.criterion(self.D(self.G(torch.randn(b, self.z_dim))), ones)
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()

        self.d_losses.append(d_loss.item())
        self.g_losses.append(g_loss.item())

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.step()
