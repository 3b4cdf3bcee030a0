"""Several processes (ranks) training one model: torchrun starts them, torch.distributed connects them.

What every rank does, for every family alike (docs/ARCHITECTURE.md, "More than one process"):

- it takes its contiguous shard of each global batch: `train.batch_size` is the global batch, the
  same under any number of processes, and its order stays a pure function of the step;
- it draws its random numbers (GAN latents, diffusion times and noise, VAE samples) from a stream
  seeded by (seed, step, rank), so ranks draw different noise and a resumed or restarted run draws
  exactly what an uninterrupted one would, without saving any random state;
- before each optimizer step it averages that optimizer's gradients over the ranks (one flattened
  all-reduce per optimizer step, so a GAN's generator and discriminator are synchronised separately,
  each at its own step); the mean of the ranks' mean-loss gradients is the gradient of the global
  batch, so two ranks at batch b take the step one process takes at 2b (up to float rounding) for a
  family whose step draws no noise and sees no batch statistics;
- it averages the logged losses and agrees with the others on stopping (a signal) and on rolling
  back (a non-finite loss on any rank), so ranks never part ways;
- EMA copies are updated after each synchronised step, identically on every rank; batch-norm
  statistics are per rank (each normalises its own shard; running averages are rank 0's in the
  checkpoint), the documented difference from one process;
- only rank 0 writes (checkpoints, logs, samples, report); at each checkpoint the ranks check that
  they hold the same weights.
"""
from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from ..errors import ConfigError, UserError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    restart: int = 0     # how many times torchrun restarted the job (its --max-restarts)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The ranks torchrun set up (RANK, WORLD_SIZE, ...), or one process."""
    env = os.environ
    try:
        size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", "0"))
        local_size = int(env.get("LOCAL_WORLD_SIZE", str(size)))
        restart = int(env.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError as e:
        raise ConfigError(f"torchrun's environment is not whole numbers ({e})", "start the job with torchrun") from None
    if not 0 <= rank < size:
        raise ConfigError(f"RANK {rank} is outside WORLD_SIZE {size}", "start the job with torchrun")
    return World(rank, size, local_rank, max(1, local_size), restart)


class PeerFailed(UserError):
    """Another rank failed and said so; this rank stops quietly (that rank printed the reason)."""

    quiet = True


_CONNECTED = False  # whether connect() made the process group (a caller's own group is left alone)
_COMM_WORDS = ("gloo", "nccl", "connect", "peer", "timed out", "timeout", "store", "socket", "broken pipe")


def communication_failed(e: BaseException) -> bool:
    """Whether a RuntimeError is torch.distributed losing another process (gloo raises plain RuntimeError)."""
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(w in text for w in _COMM_WORDS)


def connect(world: World, device: torch.device) -> None:
    """Join the process group: gloo between CPUs, nccl between CUDA GPUs."""
    global _CONNECTED
    if not world.active or dist.is_initialized():
        return
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"several processes on device '{device}'", "use train.device=cpu or cuda with --nproc")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = datetime.timedelta(minutes=30)
    try:
        store, rank, size = next(dist.rendezvous("env://", timeout=timeout))
        # torchrun's store outlives a restart with the dead round's addresses in it (seen: the restarted
        # ranks dialled the killed rank's old port); a prefix per attempt keeps each round's keys apart
        store = dist.PrefixStore(f"aigc/attempt-{world.restart}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=timeout,
                                device_id=device if device.type == "cuda" else None)
    except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or ["?"])[0][:200]
        raise UserError(f"process {world.rank} could not reach the other processes of the job ({first})",
                        "start every process with the same torchrun command and rendezvous endpoint") from None
    _CONNECTED = True


def disconnect(world: World) -> None:
    global _CONNECTED
    if _CONNECTED and dist.is_initialized():
        dist.destroy_process_group()
    _CONNECTED = False


def agree(world: World, ok: bool, device: torch.device) -> bool:
    """True when every rank is ok (one all-reduce); lets a failure on one rank stop all of them."""
    if not world.active:
        return ok
    flag = torch.tensor([0.0 if ok else 1.0], device=device)
    dist.all_reduce(flag)
    return bool(flag.item() == 0)


def together(world: World, device: torch.device, action: Callable[[], T], *, run: bool = True) -> T | None:
    """Run `action` where `run` is true (None elsewhere), then make every rank agree it succeeded: a
    UserError on one rank is raised there and becomes a quiet PeerFailed on the others, not a hang."""
    error: UserError | None = None
    result = None
    try:
        if run:
            result = action()
    except UserError as e:
        error = e
    if not agree(world, error is None, device):
        raise error or PeerFailed("another process of this job failed (its message says why)", "see that message")
    return result


def broadcast_int(world: World, value: int, device: torch.device) -> int:
    """Rank 0's `value` on every rank."""
    if not world.active:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, 0)
    return int(t.item())


def broadcast_weights(model: torch.nn.Module, world: World) -> None:
    """Rank 0's parameters and buffers on every rank (as DDP does when it wraps a module)."""
    if world.active:
        with torch.no_grad():
            for t in model.state_dict().values():
                dist.broadcast(t, 0)


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of rank `rank`'s random stream at `step` (distinct for every pair, under 2**63)."""
    return ((seed * 1_000_003 + step) * 65_537 + rank) % (2 ** 63 - 1)


def shard(indices: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's contiguous slice of a global batch's indices."""
    if not world.active:
        return indices
    per = len(indices) // world.size
    return indices[world.rank * per:(world.rank + 1) * per]


def check_batch(batch: int, world: World) -> None:
    if world.active and batch % world.size:
        raise ConfigError(f"train.batch_size {batch} does not split evenly over {world.size} processes",
                          f"use a multiple of {world.size} (the batch size is the global batch, split over the processes)")


class GradSync:
    """Averages each optimizer's gradients over the ranks just before it steps (a pre-step hook,
    registered before clipping and the schedule, so those see the global gradient)."""

    def __init__(self, model: torch.nn.Module, opts: dict[str, torch.optim.Optimizer], world: World):
        self.world = world
        self.bytes: dict[str, int] = {}   # what one all-reduce of each optimizer reduces (fp32 gradients)
        self.seconds = 0.0                # time spent averaging (the trainer logs it per step and resets it)
        for name, opt in opts.items():
            owned = [p for g in opt.param_groups for p in g["params"]]
            # the model's own order (the same on every rank), then any the model does not register
            in_model = {id(p) for p in model.parameters()}
            ids = {id(p) for p in owned}
            params = [p for p in model.parameters() if id(p) in ids] + [p for p in owned if id(p) not in in_model]
            self.bytes[name] = sum(p.numel() * 4 for p in params)
            if world.active:
                opt.register_step_pre_hook(self._hook(params))

    def _hook(self, params: list[torch.nn.Parameter]):
        def hook(opt, args, kwargs) -> None:
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                return
            tic = time.perf_counter()
            flat = torch.cat([g.reshape(-1).float() for g in grads])
            dist.all_reduce(flat)
            flat /= self.world.size
            for g, new in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
                g.copy_(new.view_as(g))
            self.seconds += time.perf_counter() - tic

        return hook


def reduce_logs(logs: dict[str, torch.Tensor], stop: bool, world: World,
                device: torch.device) -> tuple[dict[str, torch.Tensor], bool]:
    """The ranks' mean of each logged value (a non-finite one anywhere stays non-finite everywhere),
    and whether any rank was asked to stop; one small all-reduce a step."""
    keys = list(logs)
    values = torch.stack([logs[k].float().reshape(()).to(device) for k in keys]
                         + [torch.tensor(float(stop), device=device)])
    dist.all_reduce(values)
    mean = values[:-1] / world.size
    return {k: mean[i] for i, k in enumerate(keys)}, bool(values[-1].item() > 0)


def weight_digest(t: torch.Tensor) -> torch.Tensor:
    """Two integers of a tensor's exact bits (its plain sum and a position-weighted sum): the same on
    any machine for the same values, unlike a float sum, whose rounding depends on the CPU's SIMD."""
    flat = t.detach().contiguous().flatten()
    size = flat.element_size()
    bits = flat.view({8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}[size]).to(torch.int64)
    weights = torch.arange(1, len(bits) + 1, device=bits.device) % 65_521
    return torch.stack([bits.sum(), (bits * weights).sum()])


def check_same_weights(model: torch.nn.Module, world: World, step: int) -> None:
    """Every rank must hold the same trainable weights (a cheap digest per rank, compared on all)."""
    if not world.active:
        return
    params = [p.detach() for p in model.parameters() if p.requires_grad]
    if not params:
        return
    digest = torch.stack([weight_digest(p) for p in params]).flatten()
    gathered = [torch.empty_like(digest) for _ in range(world.size)]
    dist.all_gather(gathered, digest)
    if any(not torch.equal(gathered[0], g) for g in gathered[1:]):
        raise UserError(f"the {world.size} processes hold different weights at step {step}",
                        "a family's training step must run the same code on every process; please report this")


def launch(argv: list[str], nproc: int, max_restarts: int = 0) -> int:
    """`aigc train ... --nproc N`: torchrun --standalone --nproc-per-node N -m aigc train ... on this
    machine (torchrun's own launcher, in this process); returns the job's exit status."""
    import logging
    import signal

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))  # also quiets torchrun's notice
    # the processes say what went wrong in one line each; torchrun's own log lines would repeat it
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    args = torchrun.parse_args(["--standalone", f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}",
                                "--module", "aigc", *argv])
    try:
        torchrun.run(args)
    except ChildFailedError as e:
        codes = [f.exitcode for f in e.failures.values()] or [1]
        code = next((c for c in codes if c == 2), codes[0])  # a user error (one line, exit 2) is the cause
        return 128 + abs(code) if code < 0 else code  # killed by a signal: 128 + its number, like a shell
    except SignalException as e:  # the launcher was signalled (Ctrl-C, kill): it passed it on to the processes
        return 128 + int(e.sigval)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    return 0
