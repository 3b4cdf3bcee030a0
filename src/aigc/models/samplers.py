"""The maths of diffusion and flow matching, on plain tensors and callables (no networks, no configs).

Diffusion (DDPM, Ho et al. 2020): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps over t = 0..T-1, with a
linear or cosine (Nichol & Dhariwal 2021) schedule of abar; samplers DDIM (Song et al. 2021, eta 0:
deterministic) and DPM-Solver++ 2M (Lu et al. 2022), both driven by a `denoise(x, i) -> x0_hat`.

Flow matching / rectified flow (Lipman et al. 2023, Liu et al. 2023): x_t = (1 - t) noise + t data for t
in [0, 1], velocity target data - noise; samplers Euler, Heun and midpoint on `velocity(x, t)`, and the
log-likelihood through the ODE (the instantaneous change of variables, Chen et al. 2018) with
Hutchinson's trace estimate (Grathwohl et al. 2019).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

# ---------------------------------------------------------------- diffusion


def alpha_bars(schedule: str, steps: int) -> torch.Tensor:
    """abar_t for t = 0..steps-1 (float64): the share of signal variance left at step t."""
    if schedule == "linear":  # Ho et al.: betas from 1e-4 to 0.02 at T = 1000, scaled for other T
        scale = 1000 / steps
        betas = torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
        return torch.cumprod(1.0 - betas, 0)
    if schedule == "cosine":  # Nichol & Dhariwal: abar(t) = cos^2((t/T + s) / (1 + s) * pi/2), betas <= 0.999
        s = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        return torch.cumprod(1.0 - betas, 0)
    raise ValueError(f"unknown noise schedule {schedule!r}")


def noised(x0: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """q(x_t | x_0) drawn with the given noise: sqrt(abar) x0 + sqrt(1 - abar) noise (abar per item)."""
    a = abar.to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def timesteps(total: int, steps: int) -> list[int]:
    """`steps` diffusion steps spread evenly from total-1 down to 0 (distinct, descending)."""
    steps = max(1, min(steps, total))
    return sorted({round(i) for i in torch.linspace(total - 1, 0, steps).tolist()}, reverse=True)


def ddim(denoise: Callable[[torch.Tensor, int], torch.Tensor], x: torch.Tensor, abar: torch.Tensor,
         steps: int, *, eta: float = 0.0, generator: torch.Generator | None = None,
         trajectory: list[torch.Tensor] | None = None) -> torch.Tensor:
    """DDIM from pure noise x at t = T-1 to a sample, one network evaluation per step.

    After the last listed step the sample is the prediction of x_0 (abar = 1). eta = 0 makes the path
    deterministic given x; eta = 1 adds DDPM's noise. `trajectory` collects x after every step."""
    ts = timesteps(len(abar), steps)
    for i, t in enumerate(ts):
        a_t = float(abar[t])
        a_prev = float(abar[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        x0 = denoise(x, t)
        eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) if a_prev < 1 else 0.0
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        if trajectory is not None:
            trajectory.append(x)
    return x


def dpm_solver_2m(denoise: Callable[[torch.Tensor, int], torch.Tensor], x: torch.Tensor, abar: torch.Tensor,
                  steps: int, *, trajectory: list[torch.Tensor] | None = None) -> torch.Tensor:
    """DPM-Solver++ 2M (Lu et al. 2022, Algorithm 2): second-order multistep in log-SNR, on x_0
    predictions, one network evaluation per step; its last step lands on abar = 1 (the x_0 estimate)."""
    ts = timesteps(len(abar), steps)

    def lam(a: float) -> float:
        return 0.5 * math.log(a / (1 - a))

    prev_x0, prev_h = None, None
    for i, t in enumerate(ts):
        a_s = float(abar[t])
        x0 = denoise(x, t)
        if i + 1 == len(ts):
            if trajectory is not None:
                trajectory.append(x0)
            return x0  # sigma = 0: x_t = alpha_t * D with alpha_t = 1
        a_t = float(abar[ts[i + 1]])
        h = lam(a_t) - lam(a_s)
        d = x0
        if prev_x0 is not None and prev_h is not None:
            r = prev_h / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
        x = math.sqrt((1 - a_t) / (1 - a_s)) * x - math.sqrt(a_t) * math.expm1(-h) * d
        prev_x0, prev_h = x0, h
        if trajectory is not None:
            trajectory.append(x)
    return x


# ---------------------------------------------------------------- flow matching

def flow_point(noise: torch.Tensor, data: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The linear path x_t = (1 - t) noise + t data (t per item); its velocity is data - noise."""
    tt = t.to(data.dtype).view(-1, *([1] * (data.dim() - 1)))
    return (1 - tt) * noise + tt * data


def integrate(velocity: Callable[[torch.Tensor, float], torch.Tensor], x: torch.Tensor, steps: int,
              method: str = "euler", *, t0: float = 0.0, t1: float = 1.0,
              trajectory: list[torch.Tensor] | None = None) -> torch.Tensor:
    """dx/dt = velocity(x, t) from t0 to t1 in `steps` equal steps: euler (1 evaluation a step), heun
    or midpoint (2 a step)."""
    h = (t1 - t0) / steps
    for i in range(steps):
        t = t0 + i * h
        v = velocity(x, t)
        if method == "euler":
            x = x + h * v
        elif method == "heun":
            guess = x + h * v
            x = x + h / 2 * (v + velocity(guess, t + h))
        elif method == "midpoint":
            x = x + h * velocity(x + h / 2 * v, t + h / 2)
        else:
            raise ValueError(f"unknown ODE method {method!r}")
        if trajectory is not None:
            trajectory.append(x)
    return x


def evaluations(method: str, steps: int) -> int:
    """Network evaluations a sampler spends for `steps` steps."""
    return steps * (2 if method in ("heun", "midpoint") else 1)


def ode_log_likelihood(velocity: Callable[[torch.Tensor, float], torch.Tensor], x1: torch.Tensor, steps: int,
                       *, probes: int = 1, generator: torch.Generator | None = None,
                       exact_trace: bool = False) -> torch.Tensor:
    """log p_1(x1) per item, in nats, for the flow dx/dt = velocity(x, t) from N(0, I) at t=0.

    The ODE runs backward from the data (t=1) to the noise (t=0) with Heun steps, carrying
    -integral of div velocity dt; the divergence is Hutchinson's E[e^T (dv/dx) e] with Rademacher
    probes e (or the exact trace for low dimensions). log p_1(x1) = log N(x0; 0, I) - integral."""
    x = x1.detach().double()
    dims = x[0].numel()

    def div(xv: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xg = xv.detach().requires_grad_(True)
            v = velocity(xg, t)
            if exact_trace:
                flat = v.reshape(len(v), -1)
                total = torch.zeros(len(v), dtype=flat.dtype)
                for j in range(flat.shape[1]):
                    (g,) = torch.autograd.grad(flat[:, j].sum(), xg, retain_graph=True)
                    total = total + g.reshape(len(v), -1)[:, j]
                return v.detach(), total
            total = torch.zeros(len(v), dtype=v.dtype)
            for k in range(probes):
                e = torch.randint(0, 2, xg.shape, generator=generator).to(v.dtype) * 2 - 1
                (g,) = torch.autograd.grad(v, xg, e, retain_graph=k + 1 < probes)
                total = total + (g * e).reshape(len(v), -1).sum(1)
            return v.detach(), total / probes

    h = -1.0 / steps
    integral = torch.zeros(len(x), dtype=torch.float64)
    for i in range(steps):
        t = 1.0 + i * h
        v1, d1 = div(x, t)
        guess = x + h * v1
        v2, d2 = div(guess, t + h)
        x = x + h / 2 * (v1 + v2)
        integral = integral + (-h) / 2 * (d1 + d2)  # integral over [t + h, t] of div, t+h < t
    log_p0 = -0.5 * (x.reshape(len(x), -1) ** 2).sum(1) - 0.5 * dims * math.log(2 * math.pi)
    return log_p0 - integral
