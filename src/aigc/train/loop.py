"""The generic loop: steps, logging, sample grids, checkpoints, exact resume, recovery from NaNs.

It knows a model only through the protocol in models/base.py and never branches on the family.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..config import Config
from ..data import Dataset, load_dataset
from ..devices import on_device, resolve_device, to_cpu
from ..errors import ConfigError, TrainingDiverged, UserError
from ..files import WRITE_ERRORS, atomic_write_text, make_dirs, write_failed
from ..models.base import GenerativeModel
from ..plugins import MODALITIES, MODELS
from ..run import build_model, read_run_config
from . import distributed as ddp
from .checkpoint import (
    clean_partial,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from .ema import EMAUpdates
from .lock import LOCK_NAME, RunLock
from .report import parameter_facts, plot_curves, read_metrics, write_report
from .schedule import StepHooks

JOB_MARK = ".torchrun-job"  # the torchrun job training in a folder (its restarts resume, others do not)
SAMPLE_SEED_OFFSET = 12345  # fixed noise for progress grids, independent of the training RNG
Evaluator = Callable[[GenerativeModel, Dataset], dict[str, float]]


class BatchOrder:
    """Data order as a pure function of the step: epoch e uses permutation seeded (seed, e).

    Resuming at step s therefore replays exactly the batches an uninterrupted run would see.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch = n, min(batch_size, n)
        self.per_epoch = n // self.batch
        self.seed = seed
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def indices(self, step: int) -> torch.Tensor:
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[pos * self.batch:(pos + 1) * self.batch]


@dataclass
class Result:
    run_dir: Path
    step: int
    interrupted: bool
    seconds: float
    signal: int | None = None     # what interrupted it (SIGINT, SIGTERM, SIGHUP)


class _Interrupt:
    """The first Ctrl-C, SIGTERM (kill, timeout, systemd, Docker, SLURM) or SIGHUP (a closed terminal)
    asks the loop to stop after the current step and save; a second one stops at once."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self):
        self.requested = False
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        if _main_thread():
            for name in self.SIGNALS:
                if hasattr(signal, name):
                    sig = getattr(signal, name)
                    self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def compile_networks(model: torch.nn.Module) -> None:
    """torch.compile each network the model holds, in place: weights and state_dict keys stay the same."""
    for child in model.children():
        if any(True for _ in child.parameters()):
            child.compile(dynamic=False)


def check_run_dir(run_dir: Path, cfg: Config, resume: bool) -> None:
    """A new run needs a folder without checkpoints; a resumed one its own data, model and step maths."""
    if not resume and list_checkpoints(run_dir):
        raise ConfigError(f"{run_dir} already holds a trained run",
                          "add --resume to continue it, or choose another --out")
    if resume and (run_dir / "config.yaml").is_file():
        saved = read_run_config(run_dir)
        for section in ("data", "model", "seed"):
            if getattr(saved, section) != getattr(cfg, section):
                raise ConfigError(f"--resume cannot change '{section}' of {run_dir}",
                                  "resume with the same settings, or start a new run with another --out")
        for key in ("schedule", "warmup", "min_lr", "grad_clip"):  # part of the maths of every step
            if getattr(saved.train, key) != getattr(cfg.train, key):
                raise ConfigError(f"--resume cannot change 'train.{key}' of {run_dir} "
                                  f"({getattr(saved.train, key)} -> {getattr(cfg.train, key)})",
                                  "resume with the same settings, or start a new run with another --out")


class _NoWriter(contextlib.AbstractContextManager):
    """TensorBoard for ranks other than 0: they log nothing."""

    def __exit__(self, *exc) -> None:
        return None

    def add_scalar(self, *args, **kwargs) -> None:
        pass


class Trainer:
    def __init__(self, cfg: Config, run_dir: Path, *, resume: bool = False, data: Dataset | None = None,
                 evaluator: Evaluator | None = None, echo: Callable[[str], None] = print):
        self.cfg, self.run_dir, self.echo = cfg, Path(run_dir), echo
        self.evaluator = evaluator
        self.world = w = ddp.world_from_env()  # one process, or the ranks torchrun started
        if not w.main:
            self.echo = echo = lambda m: None  # rank 0 speaks for the job
        self.device = resolve_device(cfg.train.device, w.local_rank)
        if w.local_size > 1 and ":" in cfg.train.device:
            raise ConfigError(f"train.device is {cfg.train.device} for {w.local_size} processes on one machine",
                              "use train.device=cuda: process k then takes GPU k")
        ddp.connect(w, self.device)
        existed = self.run_dir.exists()
        self.lock: RunLock | None = None
        try:
            # torchrun restarted this job after it had started training here: go on from its last checkpoint
            resume = bool(ddp.broadcast_int(w, int(resume or self._restarted()), self.device))
            # one training per folder, before anything is touched (rank 0 holds it for the job)
            self.lock = ddp.together(w, self.device, lambda: RunLock(self.run_dir).acquire(), run=w.main)
            self._set_up(resume, data)
        except BaseException as e:
            if self.lock is not None:
                self.lock.release()
                if not existed:  # a refused new run leaves no folder behind
                    (self.run_dir / LOCK_NAME).unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        self.run_dir.rmdir()
            ddp.disconnect(w)
            if w.active and ddp.communication_failed(e):
                raise self._lost(e) from None
            raise

    def _restarted(self) -> bool:
        """A restart (by torchrun's --max-restarts) of a job that got past its set-up in this folder.

        A first attempt that was refused (a folder holding another run) leaves no mark, so its restart
        is refused again rather than resuming a run it was told to leave alone."""
        job = os.environ.get("TORCHELASTIC_RUN_ID")
        if self.world.restart == 0 or not job:
            return False
        try:
            return (self.run_dir / JOB_MARK).read_text(encoding="utf-8").strip() == job
        except OSError:
            return False

    def _lost(self, e: BaseException) -> UserError:
        first = (str(e).strip().splitlines() or ["?"])[0][:200]
        step = getattr(self, "step", 0)
        return UserError(f"process {self.world.rank} lost the other processes of the job at step {step} ({first})",
                         "torchrun restarts the job from its last checkpoint when --max-restarts "
                         "allows; else continue it with --resume")

    def _set_up(self, resume: bool, data: Dataset | None) -> None:
        cfg, echo, w, dev = self.cfg, self.echo, self.world, self.device
        ddp.together(w, dev, lambda: check_run_dir(self.run_dir, cfg, resume), run=w.main)
        # the cores are shared by the ranks on this machine (torchrun's OMP_NUM_THREADS=1 is overridden)
        torch.set_num_threads(cfg.train.threads or max(1, (os.cpu_count() or 1) // w.local_size))
        torch.manual_seed(cfg.seed)

        def load() -> Dataset:
            return data or load_dataset(cfg.data)

        # one rank per machine fills the data cache first, then the others read it
        first = ddp.together(w, dev, load, run=w.local_rank == 0)
        later = ddp.together(w, dev, load, run=w.local_rank != 0)
        self.data = first if w.local_rank == 0 else later
        for warning in self.data.meta.get("warnings") or []:  # what the source found (cut samples...)
            echo(f"warning: {warning}")
        family = MODELS.get(str(cfg.model["name"]))  # asked before building: a family fits only its own data
        makes = family.makes(self.data.meta)
        if makes != self.data.modality:
            raise ConfigError(f"model {cfg.model['name']} makes {makes} but {cfg.data.source} "
                              f"holds {self.data.modality}", "pick a model for this kind of data")
        self.model = build_model(cfg.model, self.data.meta)
        self.modality = MODALITIES.get(self.model.modality)
        self.model.to(dev)
        ddp.broadcast_weights(self.model, w)  # every rank starts from rank 0's weights
        if cfg.train.channels_last:  # only 4-D (conv) tensors change layout; oneDNN convs run faster in NHWC
            for t in [*self.model.parameters(), *self.model.buffers()]:
                if t.dim() == 4:  # the call Module.to makes, which refuses a model with 5-D (video) weights
                    t.data = t.data.to(memory_format=torch.channels_last)
        self.opts = self.model.configure_optimizers(cfg.train)
        self.base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in self.opts.items()}
        self.sync = ddp.GradSync(self.model, self.opts, w)           # ranks average gradients first,
        self.hooks = StepHooks(self.model, self.opts, cfg.train)   # then schedule and clipping, every family
        self.ema = EMAUpdates(self.model, self.opts)                 # the averages the family names
        if cfg.train.compile:
            compile_networks(self.model)
        self.order = BatchOrder(len(self.data), cfg.train.batch_size, cfg.seed)
        ddp.check_batch(self.order.batch, w)
        self.step, self.lr_scale, self.rollbacks, self.best = 0, 1.0, 0, None
        self.elapsed = 0.0
        self.stop_agreed = False
        ckpt = self._agreed_checkpoint() if resume else None
        if ckpt is not None:
            ddp.together(w, dev, lambda: self._restore(ckpt))
            self._apply_lr_scale()  # the config's train.lr wins over the rate stored in the checkpoint
            echo(f"resuming {self.run_dir} from {ckpt.name}")
        ddp.together(w, dev, self._write_run_files, run=w.main)

    # ------------------------------------------------------------ set-up

    def _agreed_checkpoint(self) -> Path | None:
        """The newest intact checkpoint as rank 0 finds it; every rank loads that same one."""
        w = self.world
        found = ddp.together(w, self.device, lambda: find_checkpoint(self.run_dir, warn=self.echo), run=w.main)
        step = ddp.broadcast_int(w, int(found.name.split("-")[1]) if found is not None else -1, self.device)
        if step < 0:
            return None
        # the others look up (and verify) the checkpoint rank 0 verified; rank 0 does not check it twice
        named = ddp.together(w, self.device, lambda: find_checkpoint(self.run_dir, f"step-{step:08d}"), run=not w.main)
        return found if w.main else named

    def _write_run_files(self) -> None:
        make_dirs(self.run_dir)
        clean_partial(self.run_dir)  # only our own leftovers: the lock keeps other trainings out
        atomic_write_text(self.run_dir / "config.yaml", self.cfg.to_yaml())
        atomic_write_text(self.run_dir / "data.json", json.dumps(self.data.meta, indent=1, ensure_ascii=False))
        if os.environ.get("TORCHELASTIC_RUN_ID"):  # this torchrun job trains here: its restarts resume
            atomic_write_text(self.run_dir / JOB_MARK, os.environ["TORCHELASTIC_RUN_ID"] + "\n")

    def _restore(self, ckpt: Path) -> None:
        state = load_checkpoint(ckpt, self.model, self.opts)
        self.step = state["step"]
        self.lr_scale = state.get("lr_scale", 1.0)
        self.rollbacks = state.get("rollbacks", 0)
        self.best = state.get("best")
        self.elapsed = state.get("elapsed", 0.0)
        self.ema.restore(state.get("ema_updates"), self.opts)

    def _apply_lr_scale(self) -> None:
        """Each optimizer's rate = the configured rate x the scale left by rollbacks."""
        for name, opt in self.opts.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name], strict=True):
                group["lr"] = base * self.lr_scale

    def _state(self) -> dict[str, Any]:
        return {"lr_scale": self.lr_scale, "rollbacks": self.rollbacks, "best": self.best,
                "elapsed": self.elapsed, "ema_updates": dict(self.ema.counts), "data_order": {"seed": self.cfg.seed, "batch": self.order.batch},
                "torch": torch.__version__}

    def save(self) -> Path:
        """Write a checkpoint (called on rank 0 only)."""
        return save_checkpoint(self.run_dir, self.step, self.model, self.opts, self._state(),
                               self.cfg.train.keep_last)

    def save_checked(self) -> Path:
        """save(), after the ranks have checked that they hold the same weights; a failure to write
        (a full disk) stops every rank, with one message from rank 0."""
        ddp.check_same_weights(self.model, self.world, self.step)
        ddp.together(self.world, self.device, self.save, run=self.world.main)
        return self.run_dir / "checkpoints" / f"step-{self.step:08d}"

    # ------------------------------------------------------------ the loop

    def fit(self) -> Result:
        try:
            return self._fit()
        except UserError:
            raise
        except WRITE_ERRORS as e:  # a full disk or a folder that vanished: say so, keep what was saved
            raise write_failed(Path(getattr(e, "filename", None) or self.run_dir), e) from None
        except RuntimeError as e:
            if not (self.world.active and ddp.communication_failed(e)):
                raise
            # a collective failed: another rank died (killed, out of memory) or the network dropped
            raise self._lost(e) from None
        finally:
            if self.lock is not None:
                self.lock.release()
            ddp.disconnect(self.world)

    def _fit(self) -> Result:
        t, main = self.cfg.train, self.world.main
        metrics_path = self.run_dir / "metrics.jsonl"
        if main:
            self._trim_metrics(metrics_path)
        first = main and self.step == 0 and not list_checkpoints(self.run_dir)
        ddp.together(self.world, self.device, self.save, run=first)  # a rollback point before the first update
        from torch.utils.tensorboard import SummaryWriter

        fixed = torch.Generator().manual_seed(self.cfg.seed + SAMPLE_SEED_OFFSET)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        window_time, window_steps = 0.0, 0  # time in training steps only, not sampling or saving
        start_step = self.step
        self.model.train()
        with (SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step or None) if main else _NoWriter()) as tb, \
                tqdm(total=t.steps, initial=self.step, disable=None if t.progress and main else True,
                     dynamic_ncols=True, file=sys.stderr, desc=self.cfg.name) as bar, \
                _Interrupt() as interrupt, open(metrics_path if main else os.devnull, "a", encoding="utf-8") as log:
            while self.step < t.steps and not self._stopping(interrupt):
                tic = time.perf_counter()
                logs = self.train_step(stop=interrupt.requested)
                took = time.perf_counter() - tic
                window_time += took
                self.elapsed += took  # per step, so a checkpoint between log rows records its true time
                if logs is None:
                    continue
                window_steps += 1
                bar.update(1)
                for k, v in logs.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                    counts[k] = counts.get(k, 0) + 1
                if self.step % t.log_every == 0 or self.step == t.steps:
                    row = {"step": self.step, "time": round(self.elapsed, 3),
                           **{k: sums[k].item() / counts[k] for k in sums}, "lr": self.current_lr(),
                           "items_per_s": window_steps * self.order.batch / max(window_time, 1e-9)}
                    if self.world.active:  # seconds a step spent averaging gradients (waits for the slowest rank included)
                        row["sync_s"] = self.sync.seconds / max(window_steps, 1)
                        self.sync.seconds = 0.0
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    for k, v in row.items():
                        if k not in ("step", "time"):
                            tb.add_scalar(k, v, self.step)
                    shown = {k: f"{v:.3f}" for k, v in row.items() if k.endswith("loss")}
                    bar.set_postfix(shown)
                    if bar.disable:
                        self.echo(f"step {self.step}/{t.steps} " + " ".join(f"{k}={v}" for k, v in shown.items()))
                    sums, counts, window_steps, window_time = {}, {}, 0, 0.0
                if t.sample_every and self.step % t.sample_every == 0:
                    ddp.together(self.world, self.device, lambda: self._progress_samples(fixed, tb), run=main)
                if t.eval_every and self.step % t.eval_every == 0:  # only rank 0 holds an evaluator
                    ddp.together(self.world, self.device, lambda: self._evaluate(log, tb),
                                 run=main and self.evaluator is not None)
                if t.ckpt_every and self.step % t.ckpt_every == 0 and self.step != t.steps:
                    self.save_checked()
        ckpts = list_checkpoints(self.run_dir)
        needed = self.step > start_step or not ckpts or ckpts[-1].name != f"step-{self.step:08d}"
        if ddp.broadcast_int(self.world, int(needed), self.device):  # rank 0's folder decides for all
            self.save_checked()
        if main:
            self.finish(fixed)
        if interrupt.requested:
            name = signal.Signals(interrupt.signum).name if interrupt.signum else "a signal"
            self.echo(f"interrupted by {name} at step {self.step}; checkpoint saved. Continue with --resume")
        return Result(self.run_dir, self.step, interrupt.requested, self.elapsed, interrupt.signum)

    def _stopping(self, interrupt: _Interrupt) -> bool:
        """A signal asked to stop: this process's wish alone, or under several processes what they
        agreed in the last step (so all stop after the same step)."""
        return self.stop_agreed if self.world.active else interrupt.requested

    def train_step(self, stop: bool = False) -> dict[str, torch.Tensor] | None:
        """The hot loop's body: this step's batch (an index slice), the model's update, a NaN check.

        Returns the step's detached logs, or None when a non-finite loss rolled training back.
        Under several processes each takes its shard of the batch and its own random stream, and the
        logs (with `stop`, a signal's wish to stop) are agreed on by all.
        """
        w = self.world
        idx = ddp.shard(self.order.indices(self.step), w)
        if w.active or self.device.type != "cpu":  # a GPU's RNG state is not saved: seeded by the step instead
            torch.manual_seed(ddp.step_seed(self.cfg.seed, self.step, w.rank))
        batch = {k: v[idx] for k, v in self.data.train.items()}
        if self.device.type != "cpu":
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self.hooks.step = self.step
        with on_device(self.device), \
                torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.train.precision == "bf16"):
            logs = self.model.training_step(batch, self.opts, self.step)
        if w.active:
            logs, self.stop_agreed = ddp.reduce_logs(logs, stop, w, self.device)
        if logs and not torch.isfinite(torch.stack([v.float() for v in logs.values()])).all():
            self._roll_back(logs)
            return None
        self.step += 1
        return logs

    def current_lr(self) -> float:
        """The rate of the first optimizer's first group at the last step taken (schedule and rollbacks included)."""
        return self.base_lrs[next(iter(self.opts))][0] * self.lr_scale * self.hooks.factor(max(0, self.step - 1))

    def _trim_metrics(self, path: Path) -> None:
        """Drop rows logged after the checkpoint we resume from (that work was lost)."""
        if not path.is_file():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        atomic_write_text(path, "".join(x + "\n" for x in keep))

    def _roll_back(self, logs: dict[str, torch.Tensor]) -> None:
        self.rollbacks += 1
        bad = ", ".join(k for k, v in logs.items() if not torch.isfinite(v).all())
        if self.rollbacks > self.cfg.train.max_rollbacks:
            raise TrainingDiverged(f"training diverged at step {self.step} ({bad} not finite) after "
                                   f"{self.cfg.train.max_rollbacks} rollbacks",
                                   "lower train.lr or check the data; the last good checkpoint is kept")
        ckpt = self._agreed_checkpoint()
        rollbacks, scale = self.rollbacks, self.lr_scale * 0.5
        # the checkpoint may predate earlier rollbacks: keep our own count and scale
        ddp.together(self.world, self.device, lambda: self._restore(ckpt))
        self.rollbacks, self.lr_scale = rollbacks, scale
        self._apply_lr_scale()
        self.echo(f"warning: {bad} not finite at step {self.step + 1}; rolled back to {ckpt.name}, "
                  f"learning rate x{self.lr_scale:g} ({self.rollbacks}/{self.cfg.train.max_rollbacks})")

    def _progress_samples(self, fixed: torch.Generator, tb) -> Path:
        state = fixed.get_state()
        self.model.eval()  # the trainer sets the mode; sampling never flips it
        with on_device(self.device):
            samples = to_cpu(self.model.sample(self.model.preview_n, generator=fixed))
        self.model.train()
        fixed.set_state(state)  # the same noise every time, so grids show progress, not luck
        path = self.modality.save(samples, make_dirs(self.run_dir / "samples") / f"step-{self.step:08d}")
        self.modality.log_samples(tb, samples, self.step)
        return path

    def _evaluate(self, log, tb) -> None:
        self.model.eval()
        # the evaluators' feature networks and data live on the CPU: a model elsewhere is measured as a CPU copy
        model = self.model if self.device.type == "cpu" else copy.deepcopy(self.model).cpu()
        scores = self.evaluator(model, self.data)
        self.model.train()
        primary = next(iter(scores))
        log.write(json.dumps({"step": self.step, **scores, "eval": primary}) + "\n")
        for k, v in scores.items():
            tb.add_scalar(f"eval/{k}", v, self.step)
        if self.best is None or scores[primary] < self.best["value"]:
            self.best = {"metric": primary, "value": scores[primary], "step": self.step}
            ckpt = self.save()
            atomic_write_text(self.run_dir / "checkpoints" / "best.json",
                              json.dumps({**self.best, "checkpoint": ckpt.name}))

    def finish(self, fixed: torch.Generator) -> None:
        """samples.png (or .txt), curves.png and report.md."""
        self.model.eval()
        with on_device(self.device):
            samples = to_cpu(self.model.sample(self.model.preview_n, generator=fixed))
        samples_path = self.modality.save(samples, self.run_dir / "samples")
        plot_curves(self.run_dir, self.model.curves)
        meta = self.data.meta
        rate = [r["items_per_s"] for r in read_metrics(self.run_dir) if "items_per_s" in r]
        facts = {
            "name": self.cfg.name, "description": self.cfg.description,
            "data": self.cfg.data.source, "data note": meta.get("note"), "train items": len(self.data),
            "shape": meta.get("shape"),
            "classes": ", ".join(meta.get("class_names") or []),
            "model": self.cfg.model["name"], **parameter_facts(self.model),
            **self.model.describe(), "steps": self.step, "batch size": self.order.batch,
            "wall time": f"{self.elapsed:.1f} s (training steps only)",
            "throughput": f"{sorted(rate)[len(rate) // 2]:.0f} items/s (median of log windows)" if rate else None,
            "skipped files": len(meta.get("skipped") or []) or None,
            "data warnings": " ".join(meta.get("warnings") or []) or None,
            "checkpoint": f"checkpoints/step-{self.step:08d}",
        }
        write_report(self.run_dir, facts, self.modality.report_samples(self.run_dir, samples_path))


def train(cfg: Config, run_dir: Path | str, *, resume: bool = False, data: Dataset | None = None,
          evaluator: Evaluator | None = None, echo: Callable[[str], None] = print) -> Result:
    """Train `cfg` into `run_dir` (resuming from its newest intact checkpoint if asked)."""
    return Trainer(cfg, Path(run_dir), resume=resume, data=data, evaluator=evaluator, echo=echo).fit()


