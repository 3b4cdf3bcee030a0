"""Seeing inside a latent space: interpolations, traversals, reconstructions and nearest neighbours.

Works through the declared capabilities (aigc.models.capabilities), so GANs and VAEs are treated alike:
  LatentSpace: latent_dim, prior ("gaussian"), decode(z, labels) -> images in [0, 1];
  Encoder adds encode_images(x, labels) -> (mu, logvar) and reconstruct(x, labels).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError
from .files import atomic_write_text
from .limits import MAX_EXPLORE
from .metrics.memorization import nearest_neighbours
from .models.capabilities import Encoder, LatentSpace, Trajectory, is_conditional

KINDS = ("interpolate", "traverse", "reconstruct", "neighbours", "trajectory")
REPORT_HEADING = "## Latent space (aigc explore)"


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b at fractions t: [n, d], [n, d], [s] -> [n, s, d].

    For a Gaussian prior the straight line passes through the low-norm middle no sample comes from;
    the great circle keeps the norm typical (White 2016, Sampling Generative Networks).
    """
    a_n, b_n = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
    t = t[None, :, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a[:, None] + t[None, :, None] * (b - a)[:, None]


def _labels_for(model: Any, n: int) -> list[int] | None:
    """A conditional model's rows cycle through its classes; None for unconditional ones."""
    if not is_conditional(model):
        return None
    return [i % model.num_classes for i in range(n)]


def _row_labels(labels: list[int] | None, per_row: int) -> list[int] | None:
    return None if labels is None else [y for y in labels for _ in range(per_row)]


# ---------------------------------------------------------------- the pictures

def interpolate_latents(model: Any, rows: int, steps: int, g: torch.Generator) -> torch.Tensor:
    """rows x steps images walking between pairs of random latents (spherically for Gaussian priors)."""
    a, b = torch.randn(rows, model.latent_dim, generator=g), torch.randn(rows, model.latent_dim, generator=g)
    t = torch.linspace(0, 1, steps)
    path = slerp(a, b, t) if model.prior == "gaussian" else lerp(a, b, t)
    return model.decode(path.flatten(0, 1), _row_labels(_labels_for(model, rows), steps))


def interpolate_images(model: Any, x: torch.Tensor, y: torch.Tensor | None, rows: int,
                       steps: int) -> torch.Tensor:
    """rows x (steps + 2): real image A, decodes along the line between A's and B's codes, real B."""
    a, b = x[:rows], x[rows:2 * rows]
    ya = None if y is None else y[:rows]
    mu_a, _ = model.encode_images(a, ya)
    mu_b, _ = model.encode_images(b, None if y is None else y[rows:2 * rows])
    path = lerp(mu_a, mu_b, torch.linspace(0, 1, steps)).flatten(0, 1)
    decoded = model.decode(path, None if ya is None else ya.repeat_interleave(steps)).view(rows, steps, *x.shape[1:])
    real = lambda imgs: (imgs.float() / 255.0)[:, None]  # noqa: E731
    return torch.cat([real(a), decoded, real(b)], 1).flatten(0, 1)


def kl_per_dimension(model: Any, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Average KL(q(z_d|x) || N(0, 1)) of each latent dimension over images x, [latent_dim]."""
    mu, logvar = model.encode_images(x, y)
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(0)


def traverse(model: Any, x: torch.Tensor, y: torch.Tensor | None, steps: int,
             dims: int) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """One row per latent dimension (most KL first), that dimension set to -3..3 prior sigmas.

    The other dimensions keep the posterior mean of the first image in x.
    Returns the images, the dimension order shown and the KL of every dimension.
    """
    kl = kl_per_dimension(model, x, y)
    order = kl.argsort(descending=True)[:dims].tolist()
    mu, _ = model.encode_images(x[:1], None if y is None else y[:1])
    values = torch.linspace(-3.0, 3.0, steps)
    z = mu.repeat(len(order) * steps, 1).view(len(order), steps, -1)
    for row, d in enumerate(order):
        z[row, :, d] = values
    labels = None if y is None else y[:1].repeat(len(order) * steps)
    return model.decode(z.flatten(0, 1), labels), order, kl


def reconstructions(model: Any, x: torch.Tensor, y: torch.Tensor | None, cols: int) -> torch.Tensor:
    """Pairs of rows: real images, then their reconstructions below them."""
    rec = model.reconstruct(x, y)
    real = x.float() / 255.0
    rows = []
    for s in range(0, len(x), cols):
        rows += [real[s:s + cols], rec[s:s + cols]]
    return torch.cat(rows)


# ---------------------------------------------------------------- the command

def explore(run_dir: str | Path, kinds: list[str] | None = None, *, checkpoint: str = "latest", seed: int = 0,
            rows: int = 8, steps: int = 10, neighbours: int = 5, out: str | Path | None = None,
            data: Any = None, echo: Callable[[str], None] = print) -> dict[str, Path]:
    """Write explore/*.png for a trained image run; returns {what it shows: path}.

    kinds: any of KINDS; None means all that apply to the model (traverse and reconstruct need
    an encoder, i.e. a VAE). Real images come from the run's own data: the test split (the
    training split when there is none) for codes, the training split for neighbours.
    """
    from .data import load_dataset
    from .plugins import MODALITIES
    from .run import load

    loaded = load(run_dir, checkpoint)
    model = loaded.model
    if not isinstance(model, LatentSpace) or not MODALITIES.get(model.modality).grids:
        raise ConfigError(f"aigc explore works on image models with a latent space; {run_dir} holds "
                          f"{loaded.config.model['name']}", "give a GAN or VAE run")
    encoder, stepped = isinstance(model, Encoder), isinstance(model, Trajectory)
    wanted = list(kinds) if kinds else [k for k in KINDS if (encoder or k not in ("traverse", "reconstruct"))
                                        and (stepped or k != "trajectory")]
    for k in wanted:
        if k not in KINDS:
            raise ConfigError(f"unknown explore output '{k}'", f"choose from {', '.join(KINDS)}")
        if k in ("traverse", "reconstruct") and not encoder:
            raise ConfigError(f"--{k} needs a model with an encoder ({loaded.config.model['name']} has none)",
                              "use it on a VAE run; GANs support --interpolate and --neighbours")
        if k == "trajectory" and not stepped:
            raise ConfigError(f"--trajectory needs a model that samples in steps ({loaded.config.model['name']} "
                              "draws in one pass)", "use it on a diffusion or flow run")
    if rows <= 0 or steps < 2 or neighbours <= 0:
        raise ConfigError("explore needs rows >= 1, steps >= 2 and neighbours >= 1", "raise the numbers")
    if max(rows, steps, neighbours) > MAX_EXPLORE:
        raise ConfigError(f"explore asks for rows {rows}, steps {steps}, neighbours {neighbours}",
                          f"each at most {MAX_EXPLORE}: a picture is for looking at")
    out_dir = Path(out) if out else Path(run_dir) / "explore"
    g = torch.Generator().manual_seed(seed)
    ds = data
    if ds is None and (encoder or "neighbours" in wanted):
        ds = load_dataset(loaded.config.data)
    split = (ds.test if ds is not None and ds.test is not None and len(ds.test["x"]) else
             ds.train if ds is not None else None)
    if split is not None:
        idx = torch.randperm(len(split["x"]), generator=g)[:1000]  # enough for the KL ordering
        x = split["x"][idx]
        y = split["y"][idx] if is_conditional(model) and "y" in split else None
    written: dict[str, Path] = {}
    facts: dict[str, Any] = {"checkpoint": loaded.checkpoint.name, "seed": seed}

    def save(name: str, images: torch.Tensor, nrow: int, what: str) -> None:
        written[what] = MODALITIES.get(model.modality).save(images, out_dir / f"{name}.png", "png", nrow=nrow)
        echo(f"wrote {written[what]}: {what}")

    if "interpolate" in wanted:
        save("interpolate-random-latents", interpolate_latents(model, rows, steps, g), steps,
             "walks between random latents" + (" (spherical)" if model.prior == "gaussian" else ""))
        if encoder and len(x) >= 2:
            r = min(rows, len(x) // 2)
            save("interpolate-real-images", interpolate_images(model, x, y, r, steps), steps + 2,
                 "two real test images (ends) and decodes along the line between their codes")
    if "traverse" in wanted:
        dims = min(model.latent_dim, 16)
        images, order, kl = traverse(model, x, y, steps, dims)
        save("traverse-latents-by-kl", images, steps,
             f"one row per latent dimension (most-used first: {order}), set to -3..3 sigma")
        facts["traverse"] = {"dimensions_shown": order, "kl_nats_per_dimension": [round(float(v), 4) for v in kl],
                             "values": [-3.0, 3.0]}
    if "reconstruct" in wanted:
        n = min(len(x), 4 * steps)
        save("reconstruct-test-images", reconstructions(model, x[:n], None if y is None else y[:n], steps), steps,
             "real test images (odd rows) above their reconstructions (even rows)")
    if "trajectory" in wanted:
        path = model.trajectory(rows, labels=_labels_for(model, rows), generator=g)
        save("trajectory-noise-to-image", path.flatten(0, 1), path.shape[1],
             f"one row per sample: the noise, then the state after each of the sampler's {path.shape[1] - 1} steps")
    if "neighbours" in wanted:
        samples = model.decode(torch.randn(rows, model.latent_dim, generator=g), _labels_for(model, rows))
        dist, near = nearest_neighbours(samples.flatten(1), ds.train["x"].flatten(1).float().div_(255.0), neighbours)
        dist = dist.float()
        grid = torch.cat([samples[:, None], (ds.train["x"][near].float() / 255.0)], 1).flatten(0, 1)
        save("neighbours-samples-vs-train", grid, neighbours + 1,
             f"each generated sample (first column) beside its {neighbours} nearest training images (pixel L2)")
        facts["neighbours"] = {"pixel_l2_nearest": [round(float(d), 4) for d in dist[:, 0]],
                               "train_indices": near.tolist()}
    facts["figures"] = {what: p.name for what, p in written.items()}
    atomic_write_text(out_dir / "explore.json", json.dumps(facts, indent=1))
    if out is None:
        link_in_report(Path(run_dir), written)
    return written


def link_in_report(run_dir: Path, written: dict[str, Path]) -> None:
    """Add (or refresh) a section of report.md that shows the explore figures."""
    report = run_dir / "report.md"
    if not report.is_file() or not written:
        return
    text = report.read_text(encoding="utf-8")
    if REPORT_HEADING in text:  # drop the old section, up to the next heading of the same level
        head, _, rest = text.partition(REPORT_HEADING)
        nxt = rest.find("\n## ")
        text = head.rstrip("\n") + "\n" + (rest[nxt:] if nxt >= 0 else "")
    lines = ["", REPORT_HEADING, ""]
    for what, path in written.items():
        rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        lines += [f"{what[0].upper()}{what[1:]}:", "", f"![{path.stem}]({rel.as_posix()})", ""]
    atomic_write_text(report, text.rstrip("\n") + "\n" + "\n".join(lines))
