"""A DCGAN loop in the style of pytorch/examples' dcgan/main.py, on the same nets as aigc's `dcgan`.

Same architecture as aigc's `fashion-dcgan` recipe at 28x28 (channels 32, z 64, N(0, 0.02) init),
same BCE loss, Adam(2e-4, betas 0.5/0.999), batch 64. Written as the example does: a DataLoader
of per-item transforms, D on real and fake in separate forwards with separate backwards, label
tensors filled per step, D not frozen during the G update, and `.item()` reads every step.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .common import Endless, tutorial_loader


class Generator(nn.Module):
    def __init__(self, nz: int = 64, ngf: int = 32):
        super().__init__()
        self.nz, self.ngf = nz, ngf
        self.fc = nn.Linear(nz, ngf * 4 * 7 * 7, bias=False)
        self.main = nn.Sequential(
            nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, 1, 3, 1, 1), nn.Tanh(),
        )

    def forward(self, z):
        return self.main(self.fc(z).view(-1, self.ngf * 4, 7, 7))


class Discriminator(nn.Module):
    def __init__(self, ndf: int = 32):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),            # 28 -> 14
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),      # 14 -> 7
            nn.Conv2d(ndf * 2, ndf * 4, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),  # 7 -> 4
            nn.Flatten(), nn.Linear(ndf * 4 * 4 * 4, 1), nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x).view(-1)


def weights_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)


class DCGANTutorial:
    """`steps(n)` runs n training steps; state persists between calls."""

    def __init__(self, root: Path, batch_size: int = 64, nz: int = 64, seed: int = 0):
        torch.manual_seed(seed)
        self.nz = nz
        self.data = Endless(tutorial_loader(root, batch_size))
        self.netG, self.netD = Generator(nz), Discriminator()
        self.netG.apply(weights_init)
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.log: list[tuple[float, float, float, float]] = []

    def step(self) -> None:
        real_cpu, _ = self.data.next()
        b = real_cpu.size(0)
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        label = torch.full((b,), 1.0)
        output = self.netD(real_cpu)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(b, self.nz)
        fake = self.netG(noise)
        label.fill_(0.0)
        output = self.netD(fake.detach())
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        errD = errD_real + errD_fake
        self.optD.step()
        # (2) update G: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(1.0)
        output = self.netD(fake)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optG.step()
        self.log.append((errD.item(), errG.item(), D_x, D_G_z2))

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.step()
