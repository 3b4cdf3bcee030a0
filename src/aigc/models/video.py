"""Video families: flow matching on clips with a factorised space-time U-Net, and MoCoGAN.

The network is the image U-Net (aigc.models.unet) run on every frame at once, with two additions
that let frames see each other (as in Ho et al. 2022's video diffusion and Make-A-Video):

- after every residual block, a temporal convolution (kernel 3 along the frames, per pixel), its
  output initialised to zero so that training starts from a per-frame image network;
- at the lowest resolution, self-attention over all frames' positions at once (space-time), with a
  learned embedding of each frame's index.

The maths (linear path, Euler/Heun sampling, class labels with classifier-free guidance, EMA) is the
flow family's own; a clip is one sample [T, C, H, W] and the noise is one number per pixel of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..plugins import MODELS
from .diffusion import FlowConfig, FlowMatching
from .gan import DCGAN, DCGANConfig
from .gan_nets import DCDiscriminator, DCGenerator, Projection, spectral_if
from .unet import Attention, ResBlock, UNet, norm_groups


class TemporalConv(nn.Module):
    """x [n*T, c, h, w] -> x + conv1d over T (per pixel and channel group), zero at initialisation."""

    def __init__(self, c: int, frames: int):
        super().__init__()
        self.frames = frames
        self.norm = nn.GroupNorm(norm_groups(c), c)
        self.conv = nn.Conv1d(c, c, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n, t = nt // self.frames, self.frames
        seq = F.silu(self.norm(x)).reshape(n, t, c, h * w).permute(0, 3, 2, 1).reshape(n * h * w, c, t)
        out = self.conv(seq).reshape(n, h * w, c, t).permute(0, 3, 2, 1).reshape(nt, c, h, w)
        return x + out


class SpaceTimeBlock(ResBlock):
    """The image U-Net's residual block on each frame, then a temporal convolution across frames."""

    def __init__(self, cin: int, cout: int, emb: int, dropout: float, *, frames: int):
        super().__init__(cin, cout, emb, dropout)
        self.temporal = TemporalConv(cout, frames)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.temporal(super().forward(x, e))


class SpaceTimeAttention(Attention):
    """Self-attention over every position of every frame of a clip (at the lowest resolution)."""

    def __init__(self, c: int, *, frames: int):
        super().__init__(c)
        self.frames = frames
        self.frame_pos = nn.Parameter(torch.zeros(frames, c))
        nn.init.normal_(self.frame_pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        n, t = nt // self.frames, self.frames
        seq = self.norm(x).reshape(n, t, c, h * w).permute(0, 1, 3, 2)  # [n, T, hw, c]
        seq = (seq + self.frame_pos.view(1, t, 1, c)).reshape(n, t * h * w, c)
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return x + out.reshape(n, t, h * w, c).permute(0, 1, 3, 2).reshape(nt, c, h, w)


class SpaceTimeUNet(UNet):
    """(x [n, T, C, H, W], t [n], y [n] or None) -> a tensor shaped like x."""

    def __init__(self, channels: int, widths: list[int], *, frames: int, space_time: bool = True, **kw: Any):
        def block(cin: int, cout: int, emb: int, dropout: float) -> SpaceTimeBlock:
            return SpaceTimeBlock(cin, cout, emb, dropout, frames=frames)

        def attention(c: int) -> SpaceTimeAttention:
            return SpaceTimeAttention(c, frames=frames)

        super().__init__(channels, widths, block=block, mid_attention=attention if space_time else Attention, **kw)
        self.frames = frames

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n, frames = x.shape[:2]
        flat = x.reshape(n * frames, *x.shape[2:])
        tt = t.repeat_interleave(frames)
        yy = None if y is None else y.repeat_interleave(frames, 0)
        return super().forward(flat, tt, yy).reshape(x.shape)


@dataclass
class VideoFlowConfig(FlowConfig):
    temporal_attention: bool = True   # the lowest resolution's attention spans all frames (false: each frame alone)


class ClipFamily:
    """What the video families share: their samples are clips [T, C, H, W] played at the data's rate."""

    modality = "video"
    preview_n = 16      # clips in a progress sample

    def net_shape(self, meta: dict[str, Any]) -> list[int]:
        shape = list(meta["shape"])
        if len(shape) != 4:
            raise ConfigError(f"{type(self).__name__.lower()} trains on clips, and this data's items are {shape}",
                              "use a video source (moving:fashion-mnist, clips:FOLDER)")
        self.fps = int(meta.get("fps") or 8)
        return shape


@MODELS.register("videoflow")
class VideoFlow(ClipFamily, FlowMatching):
    """Flow matching from noise to clips [T, C, H, W] on a factorised space-time U-Net."""

    Config = VideoFlowConfig
    sample_chunk = 16   # clips per network call (each is T frames)

    def make_net(self, channels: int, side: int) -> nn.Module:
        cfg = self.cfg
        return SpaceTimeUNet(channels, list(cfg.widths), frames=self.shape[0], space_time=cfg.temporal_attention,
                             blocks=cfg.blocks, attention=cfg.attention, num_classes=self.num_classes,
                             dropout=cfg.dropout, side=side, patch=cfg.patch)

    def describe(self) -> dict[str, Any]:
        t, c, h, w = self.shape
        return {**super().describe(), "network": f"factorised space-time U-Net on {t} frames of {c}x{h}x{w}: "
                "per-frame 2-D residual blocks, each followed by a temporal convolution"
                + ((", space-time" if self.cfg.temporal_attention else ", per-frame") + " attention at the lowest resolution"
               if self.cfg.attention else "")}

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None, **options: Any):
        from ..modalities.video import Video

        frames = super().sample(n, labels=labels, generator=generator, **options)
        y = self.resolve_labels(labels, n)
        names = self.label_names(y)
        return Video(frames, self.fps, names)


# ---------------------------------------------------------------- MoCoGAN: content and motion apart


class MotionGenerator(nn.Module):
    """MoCoGAN's generator (Tulyakov et al. 2018): one content code per clip, a motion code per frame
    from a GRU driven by fresh noise, and the image DCGAN's generator drawing each frame from both.

    Its input is one Gaussian vector per clip, [content (z_dim) | T x motion noise (motion_dim)], so the
    GAN family's sampling, EMA and latent walks apply unchanged."""

    def __init__(self, z_dim: int, motion_dim: int, frames: int, frame_shape: list[int], ch: int,
                 num_classes: int, embed_dim: int):
        super().__init__()
        self.z_dim, self.motion_dim, self.frames = z_dim, motion_dim, frames
        self.gru = nn.GRUCell(motion_dim, motion_dim)
        self.frame = DCGenerator(z_dim + motion_dim, frame_shape, ch, num_classes, embed_dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n, t = len(z), self.frames
        content, eps = z[:, :self.z_dim], z[:, self.z_dim:].reshape(n, t, self.motion_dim)
        h, codes = eps[:, 0], []
        for i in range(t):
            h = self.gru(eps[:, i], h)
            codes.append(h)
        per_frame = torch.cat([content.unsqueeze(1).expand(n, t, self.z_dim), torch.stack(codes, 1)], 2)
        out = self.frame(per_frame.reshape(n * t, -1), None if y is None else y.repeat_interleave(t, 0))
        return out.reshape(n, t, *out.shape[1:])


class ClipDiscriminator(nn.Module):
    """MoCoGAN's two critics in one module: `video` (3-D strided convolutions over the whole clip) and
    `image` (the image DCGAN's discriminator on `image_frames` random frames of each clip). Both end in
    a projection head for labels. forward gives both logits: [n] for clips, [n * image_frames] for frames."""

    batch_aware = False

    def __init__(self, shape: list[int], ch: int, num_classes: int, sn: bool, image_frames: int):
        super().__init__()
        t, c, h, _ = shape
        self.image_frames = image_frames
        self.image = DCDiscriminator([c, h, h], ch, num_classes, sn)
        layers, width, out, frames, side = [], c, ch, t, h
        while side > 4:
            kt = 4 if frames >= 4 else 1  # time halves while there are frames to halve
            layers += [spectral_if(nn.Conv3d(width, out, (kt, 4, 4), (2 if kt > 1 else 1, 2, 2), (1 if kt > 1 else 0, 1, 1)), sn),
                       nn.LeakyReLU(0.2)]
            frames, side, width, out = (frames // 2 if kt > 1 else frames), side // 2, out, out * 2
        layers += [nn.AdaptiveAvgPool3d((1, 4, 4)), nn.Flatten()]
        self.video = nn.Sequential(*layers)
        self.head = Projection(width * 16, num_classes, sn)

    def frames(self, x: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """The frames `pick` [n, k] of clips x [n, T, C, H, W] as images [n * k, C, H, W]."""
        idx = pick.view(len(x), -1, 1, 1, 1).expand(-1, -1, *x.shape[2:])
        return torch.gather(x, 1, idx).reshape(-1, *x.shape[2:])

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, pick: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if pick is None:
            pick = torch.randint(0, x.shape[1], (len(x), self.image_frames))
        clip = self.head(self.video(x.transpose(1, 2)), y)
        frame = self.image(self.frames(x, pick), None if y is None else y.repeat_interleave(pick.shape[1], 0))
        return clip, frame


@dataclass
class MoCoGANConfig(DCGANConfig):
    z_dim: int = 64                # content code per clip
    motion_dim: int = 16           # motion code per frame (GRU state)
    image_frames: int = 2          # frames of each clip the image critic judges
    image_weight: float = 1.0      # weight of the image critic's loss beside the video critic's

    def check(self) -> None:
        super().check()
        if self.loss == "wgan-gp":
            raise ConfigError("model.loss wgan-gp is not offered for mocogan", "use bce or hinge")
        if self.d_norm != "none" or self.mbstd:
            raise ConfigError("mocogan's critics take no batch norm or minibatch-std", "leave d_norm and mbstd unset")
        if not 1 <= self.motion_dim <= 1024:
            raise ConfigError(f"model.motion_dim is {self.motion_dim}", "use 1 to 1024, e.g. 16")
        if not 1 <= self.image_frames <= 64:
            raise ConfigError(f"model.image_frames is {self.image_frames}", "use 1 to 64, e.g. 2")
        if not 0.0 <= self.image_weight <= 100.0:
            raise ConfigError(f"model.image_weight is {self.image_weight}", "use 0 to 100, e.g. 1")


@MODELS.register("mocogan")
class MoCoGAN(ClipFamily, DCGAN):
    """Content and motion apart (Tulyakov et al. 2018): G draws frames from a clip's content code and a
    GRU's motion codes; an image critic judges single frames, a video critic whole clips."""

    Config = MoCoGANConfig
    sample_chunk = 64

    def build_nets(self, cfg: MoCoGANConfig):
        t, c, h, w = self.shape
        if h != w:
            raise ConfigError(f"mocogan needs square frames, got {h}x{w}", "set data.image_size")
        g = MotionGenerator(cfg.z_dim, cfg.motion_dim, t, [c, h, w], cfg.channels, self.num_classes, cfg.embed_dim)
        d = ClipDiscriminator(self.shape, cfg.channels, self.num_classes, cfg.spectral_norm, cfg.image_frames)
        for m in [*g.modules(), *d.modules()]:  # DCGAN init: N(0, 0.02) weights
            if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)) and not cfg.spectral_norm:
                torch.nn.init.normal_(m.weight, 0.0, 0.02)
        return g, d

    @property
    def latent_dim(self) -> int:
        return self.cfg.z_dim + self.shape[0] * self.cfg.motion_dim

    def describe(self) -> dict[str, Any]:
        t, c, h, w = self.shape
        return {"loss": self.cfg.loss, "network": f"MoCoGAN: content code {self.cfg.z_dim} + GRU motion code "
                f"{self.cfg.motion_dim} a frame -> DCGAN frame generator ({t} frames of {c}x{h}x{w}); "
                f"video critic (3-D convs) + image critic ({self.cfg.image_frames} frames a clip)"}

    def discriminator_loss(self, x, fake, y):
        """Both critics at once on real and fake clips; each judges frames `pick` drawn per clip."""
        pick = torch.randint(0, x.shape[1], (2 * len(x), self.cfg.image_frames))
        clip, frame = self.D(torch.cat([x, fake]), None if y is None else torch.cat([y, y]), pick)
        (c_real, c_fake), (f_real, f_fake) = clip.chunk(2), frame.chunk(2)
        d_video, d_image = self.loss.d_loss(c_real, c_fake), self.loss.d_loss(f_real, f_fake)
        d_loss = d_video + self.cfg.image_weight * d_image
        return d_loss, {"d_loss": d_loss.detach(), "d_video": d_video.detach(), "d_image": d_image.detach()}

    def generator_loss(self, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        clip, frame = self.D(fake, y)
        return self.loss.g_loss(clip) + self.cfg.image_weight * self.loss.g_loss(frame)

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None, ema: bool = True):
        from ..modalities.video import Video

        frames = super().sample(n, labels=labels, generator=generator, ema=ema)  # the GAN's, z of latent_dim
        y = self.resolve_labels(labels, n)
        names = self.label_names(y)
        return Video(frames, self.fps, names)
