"""A DCGAN loop in the style of pytorch/examples' dcgan/main.py, on two pairs of nets.

`nets="same"` (the speed reference): the architecture of aigc's `fashion-dcgan` recipe at 28x28 as
it was when the speed benchmark was written (channels 32, z 64, N(0, 0.02) init, D without batch norm).

`nets="examples"` (the quality reference of issue 18): the example's nets cut down to 28x28 as a
tutorial would write them, z = 100; G: ConvT 100->128 k7, BN, ReLU; ConvT 128->64 k4 s2, BN, ReLU;
ConvT 64->1 k4 s2, tanh. D: conv 1->64 k4 s2, LeakyReLU; conv 64->128 k4 s2, BN, LeakyReLU;
conv 128->1 k7, sigmoid. Convs without bias, conv weights N(0, 0.02), BN weights N(1, 0.02).

Both: BCE loss, Adam(2e-4, betas 0.5/0.999), batch 64, written as the example does: a DataLoader
of per-item transforms, D on real and fake in separate forwards with separate backwards, label
tensors filled per step, D not frozen during the G update, and `.item()` reads every step.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from aigc.pixels import from_signed, quantize

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


class ExamplesGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 7, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),   # 1 -> 7
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),       # 7 -> 14
            nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False), nn.Tanh(),                                      # 14 -> 28
        )

    def forward(self, z):
        return self.main(z.view(z.shape[0], -1, 1, 1))


class ExamplesDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),                          # 28 -> 14
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),  # 14 -> 7
            nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False), nn.Sigmoid(),                                        # 7 -> 1
        )

    def forward(self, x):
        return self.main(x).view(-1)


def examples_init(m: nn.Module) -> None:
    """pytorch/examples' weights_init: conv N(0, 0.02); batch norm weight N(1, 0.02), bias 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


NETS = {"same": (Generator, Discriminator, weights_init, 64), "examples": (ExamplesGenerator, ExamplesDiscriminator,
                                                                           examples_init, 100)}


class DCGANTutorial:
    """`steps(n)` runs n training steps; state persists between calls."""

    def __init__(self, root: Path, batch_size: int = 64, nz: int | None = None, seed: int = 0, nets: str = "same"):
        torch.manual_seed(seed)
        make_g, make_d, init, default_nz = NETS[nets]
        self.nz = nz or default_nz
        self.data = Endless(tutorial_loader(root, batch_size))
        self.netG, self.netD = make_g(self.nz), make_d()
        self.netG.apply(init)
        self.netD.apply(init)
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

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, chunk: int = 500) -> torch.Tensor:
        """n images as uint8 [n, 1, 28, 28], as a user reloading the generator draws them (eval mode)."""
        self.netG.eval()
        g = torch.Generator().manual_seed(seed)
        out = [self.netG(torch.randn(min(chunk, n - s), self.nz, generator=g)) for s in range(0, n, chunk)]
        self.netG.train()
        return quantize(from_signed(torch.cat(out)))
