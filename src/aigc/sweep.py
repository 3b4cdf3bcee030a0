"""`aigc sweep`: hyper-parameter search on Optuna, each trial an ordinary run folder.

    aigc sweep digits-gan --param train.lr=loguniform:1e-5:1e-2 --param train.batch_size=choice:32,64 \\
        --trials 20 --steps 500 --metric fid --out sweeps/digits

The study lives in OUT/journal.log (Optuna's journal file storage: safe for several processes,
unlike SQLite), so a killed sweep picks up where it was: finished trials are kept, a trial whose
process died is marked failed and its slot run again. `--workers K` runs K worker processes on the
study, each with its share of the cores. With one objective, trials report the in-training FID
(train.eval_every) and a median pruner stops the unpromising ones after a warm-up; with several
(`--metric fid,recall`) the report gives the Pareto front. OUT/report.md shows the best trials,
parameter importances and Optuna's plots; OUT/best.yaml is the best trial's config, which
`aigc train` takes as it is.
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import Config, load_config, safe_yaml
from .errors import ConfigError, UserError
from .files import atomic_write_text, make_dirs

KINDS = ("uniform", "loguniform", "int", "logint", "choice")
# metric -> (where it comes from, direction): image metrics from `aigc eval`'s sections, text from its table
METRICS = {"fid": "minimize", "kid": "minimize", "precision": "maximize", "recall": "maximize",
           "density": "maximize", "coverage": "maximize", "nll": "minimize", "bpc": "minimize"}
TRIAL_PREFIX = "trial-"
BETAS = {"train.beta1": 0, "train.beta2": 1}  # searchable halves of train.betas

# Search spaces after Lucic et al. 2018 ("Are GANs Created Equal?"), whose wide and narrow ranges
# for Adam's learning rate and beta1, the discriminator updates per generator update and the
# gradient-penalty weight we read as below. gp_weight joins only for a loss with a penalty
# (wgan-gp); beta1 stops at 0.95 rather than 1, where Adam no longer averages.
SPACES: dict[str, dict[str, str]] = {
    "lucic-wide": {"train.lr": "loguniform:1e-5:1e-2", "train.beta1": "uniform:0:0.95",
                   "model.n_critic": "int:1:5", "model.gp_weight": "loguniform:0.1:1000"},
    "lucic-narrow": {"train.lr": "loguniform:1e-4:1e-3", "train.beta1": "choice:0.5,0.9",
                     "model.n_critic": "choice:1,5", "model.gp_weight": "loguniform:1:100"},
}


@dataclass
class Param:
    key: str                 # a config key, e.g. train.lr
    kind: str                # uniform | loguniform | int | logint | choice
    low: float = 0.0
    high: float = 0.0
    choices: list[Any] = field(default_factory=list)

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, self.choices)
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.kind == "logint")
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform")


def parse_param(spec: str) -> Param:
    """'train.lr=loguniform:1e-5:1e-2', 'model.loss=choice:bce,hinge' -> Param, or one ConfigError."""
    usage = "write KEY=KIND:LOW:HIGH or KEY=choice:A,B,... with KIND one of " + ", ".join(KINDS)
    key, eq, rest = spec.partition("=")
    kind, _, args = rest.partition(":")
    if not eq or not key.strip() or kind not in KINDS or not args:
        raise ConfigError(f"--param {spec!r} is not a search range", usage)
    key = key.strip()
    if kind == "choice":
        choices = [safe_yaml(a) if a.strip() else None for a in _split_choices(args)]
        if len(choices) < 1 or len({json.dumps(c, sort_keys=True, default=str) for c in choices}) != len(choices):
            raise ConfigError(f"--param {spec!r}: choices must be distinct", usage)
        if not all(isinstance(c, (str, int, float, bool)) or c is None for c in choices):
            raise ConfigError(f"--param {spec!r}: choices must be plain values", usage)
        return Param(key, kind, choices=choices)
    parts = args.split(":")
    try:
        low, high = (float(parts[0]), float(parts[1])) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"--param {spec!r}: need two numbers LOW < HIGH", usage)
    if kind in ("loguniform", "logint") and low <= 0:
        raise ConfigError(f"--param {spec!r}: a log range must be positive", usage)
    if kind in ("int", "logint") and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"--param {spec!r}: an int range needs whole numbers", usage)
    return Param(key, kind, low, high)


def _split_choices(text: str) -> list[str]:
    """Split on commas outside brackets, so choice:[32,64],[64,128] gives two lists."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


@dataclass
class SweepSpec:
    """Everything that defines a sweep; saved as OUT/sweep.json so workers and resumes agree."""

    recipe: str
    params: list[str]
    trials: int
    out: str
    metrics: list[str] = field(default_factory=lambda: ["fid"])
    directions: list[str] | None = None
    steps: int | None = None
    minutes: float | None = None
    workers: int = 1
    eval_n: int = 2000
    eval_every: int | None = None       # in-training FID for pruning (single objective); None: steps // 4
    prune_warmup: int | None = None     # steps before pruning may stop a trial; None: half the steps
    seed: int = 0
    overrides: list[str] = field(default_factory=list)
    space: str | None = None            # a named space (SPACES); --param ranges add to it or replace its keys

    def check(self) -> tuple[list[Param], list[str], Config]:
        params = [parse_param(p) for p in self.params]
        if len({p.key for p in params}) != len(params):
            raise ConfigError("a --param key is given twice", "give each key one range")
        if self.space is not None:
            own = {p.key for p in params}
            params = [p for p in self.space_params() if p.key not in own] + params
        if not params:
            raise ConfigError("a sweep needs at least one --param or a --space",
                              "e.g. --param train.lr=loguniform:1e-5:1e-2 or --space lucic-narrow")
        for m in self.metrics:
            if m not in METRICS:
                raise ConfigError(f"unknown metric '{m}'", f"choose from {', '.join(METRICS)}")
        directions = self.directions or [METRICS[m] for m in self.metrics]
        if len(directions) != len(self.metrics) or any(d not in ("minimize", "maximize") for d in directions):
            raise ConfigError(f"--direction {','.join(directions)} does not fit --metric {','.join(self.metrics)}",
                              "one of minimize/maximize per metric")
        if not 1 <= self.trials <= 10_000 or not 1 <= self.workers <= 64:
            raise ConfigError(f"--trials {self.trials} / --workers {self.workers}", "use 1-10,000 trials, 1-64 workers")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"--minutes is {self.minutes}", "give a positive budget")
        base = self.trial_config({p.key: _example(p) for p in params}, "check")  # every key must exist
        return params, directions, base

    def space_params(self) -> list[Param]:
        """The named space's ranges that apply to this recipe (a GAN's; gp_weight only with a penalty)."""
        if self.space not in SPACES:
            raise ConfigError(f"unknown --space '{self.space}'", f"choose from {', '.join(SPACES)}")
        from .plugins import GAN_LOSSES
        from .run import model_config

        section = self.trial_config({}, "check").model
        cfg = model_config(section)
        if not hasattr(cfg, "n_critic"):
            raise ConfigError(f"--space {self.space} is for GAN recipes; {self.recipe} trains a {section['name']}",
                              "give --param ranges instead")
        penalty = getattr(GAN_LOSSES.get(cfg.loss), "penalty", False)
        return [parse_param(f"{k}={v}") for k, v in SPACES[self.space].items() if k != "model.gp_weight" or penalty]

    def trial_config(self, values: dict[str, Any], name: str) -> Config:
        overrides = list(self.overrides) + [f"name={name}"]
        if self.steps is not None:
            overrides.append(f"train.steps={self.steps}")
        halves = {k: v for k, v in values.items() if k in BETAS}
        if halves:  # train.beta1 / beta2: the other half of train.betas stays the recipe's
            betas = list(load_config(self.recipe, overrides).train.betas)
            for k, v in halves.items():
                betas[BETAS[k]] = v
            overrides.append(f"train.betas={json.dumps(betas)}")
        overrides += [f"{k}={json.dumps(v)}" for k, v in values.items() if k not in BETAS]
        cfg = load_config(self.recipe, overrides)
        cfg.train.progress = False
        return cfg


def _example(p: Param) -> Any:
    if p.kind == "choice":
        return p.choices[0]
    return int(p.low) if p.kind in ("int", "logint") else p.low


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("aigc sweep needs Optuna", "pip install optuna (make setup installs it)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def journal(spec: SweepSpec) -> Any:
    """The study's storage: Optuna's journal file in the sweep folder (an open-file lock for writers)."""
    _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(Path(spec.out) / "journal.log")
    return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


def open_study(spec: SweepSpec, directions: list[str], worker: int = 0):
    """The study; worker i of a `--workers K` sweep samples with seed + i (the same seed in two
    processes draws the same random start-up trials, so two workers would train one config twice)."""
    optuna = _optuna()
    storage = journal(spec)
    sampler = optuna.samplers.TPESampler(seed=spec.seed + worker, n_startup_trials=min(10, max(2, spec.trials // 3)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    return optuna.create_study(study_name="aigc", storage=storage, directions=directions, sampler=sampler,
                               pruner=pruner, load_if_exists=True)


def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine's worker: it answers for its own trials
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_orphans(spec: SweepSpec, study: Any) -> list[int]:
    """Trials left RUNNING by a worker that died on this machine are marked failed (their slot reruns)."""
    optuna = _optuna()
    storage = journal(spec)
    done = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid, host = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if isinstance(pid, int) and isinstance(host, str) and not _alive(pid, host):
            sid = storage.get_study_id_from_name(study.study_name)
            storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(sid, t.number),
                                           optuna.trial.TrialState.FAIL)
            done.append(t.number)
    return done


def counted(study: Any, running: bool = False) -> int:
    """Finished trials (complete or pruned), and with running=True those under way too."""
    optuna = _optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    if running:
        states += (optuna.trial.TrialState.RUNNING,)
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(spec: SweepSpec, threads: int | None = None, echo: Callable[[str], None] = print,
               worker: int = 0) -> None:
    """Take trials from the study until it holds `spec.trials` finished ones (or the budget is spent)."""
    params, directions, _ = spec.check()
    study = open_study(spec, directions, worker)
    deadline = time.monotonic() + spec.minutes * 60 if spec.minutes else None
    single = len(directions) == 1

    def objective(trial: Any) -> Any:
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        values = {p.key: p.suggest(trial) for p in params}
        name = f"{TRIAL_PREFIX}{trial.number:04d}"
        cfg = spec.trial_config(values, name)
        if threads:
            cfg.train.threads = threads
        run = Path(spec.out) / name
        evaluator = None
        if single and spec.metrics[0] == "fid":
            cfg.train.eval_every = spec.eval_every or max(1, cfg.train.steps // 4)
            cfg.train.eval_n = min(cfg.train.eval_n, spec.eval_n)
            evaluator = _pruning_evaluator(trial, cfg, spec)
        echo(f"{name}: {', '.join(f'{k}={v}' for k, v in values.items())}")
        from .data import load_dataset
        from .train import train

        data = load_dataset(cfg.data)
        train(cfg, run, data=data, evaluator=evaluator(data) if evaluator else None, echo=lambda m: None)
        scores = measure(run, spec)
        trial.set_user_attr("scores", scores)
        result = [scores[m] for m in spec.metrics]
        echo(f"{name}: " + ", ".join(f"{m} {v:.4g}" for m, v in zip(spec.metrics, result, strict=True)))
        return result[0] if single else result

    def enough(study: Any, trial: Any) -> None:
        if counted(study) >= spec.trials or (deadline and time.monotonic() > deadline):
            study.stop()

    attempts = 0  # a trial under way elsewhere counts, so K workers overshoot by at most K - 1 (a race)
    while counted(study, running=True) < spec.trials and not (deadline and time.monotonic() > deadline):
        attempts += 1
        if attempts > 3 * spec.trials:
            raise ConfigError(f"{attempts - 1} trials ran but fewer than {spec.trials} finished",
                              "most trials fail: look at the messages above and narrow the ranges")
        # a trial that diverges or whose values do not fit is recorded as failed; the sweep goes on
        study.optimize(objective, n_trials=1, callbacks=[enough], catch=(UserError,))


def _pruning_evaluator(trial: Any, cfg: Config, spec: SweepSpec):
    """The trainer's cheap FID, reported to Optuna; a trial the pruner stops ends as PRUNED."""
    optuna = _optuna()
    from .metrics import training_evaluator

    warmup = spec.prune_warmup if spec.prune_warmup is not None else cfg.train.steps // 2

    def build(data: Any):
        inner = training_evaluator(cfg, data, echo=lambda m: None)
        step = {"n": 0}

        def evaluate(model: Any, d: Any) -> dict[str, float]:
            scores = inner(model, d)
            step["n"] += cfg.train.eval_every
            trial.report(scores["fid"], step["n"])
            if step["n"] >= warmup and trial.should_prune():
                raise optuna.TrialPruned(f"FID {scores['fid']:.4g} at step {step['n']}")
            return scores

        return evaluate

    return build


def measure(run: Path, spec: SweepSpec) -> dict[str, float]:
    """The trial's final scores by `aigc eval`'s evaluator (image: fid, kid, prdc; text: its table)."""
    from .metrics import EvalRequest, evaluate_run

    image_metrics = {"fid", "kid", "precision", "recall", "density", "coverage"}
    wanted = set(spec.metrics)
    if wanted & image_metrics:
        sections = ["fid"] + (["kid"] if "kid" in wanted else []) + \
            (["prdc"] if wanted & {"precision", "recall", "density", "coverage"} else [])
        request = EvalRequest(n=spec.eval_n, seed=spec.seed, metrics=sections, floor=False, intervals=0,
                              echo=lambda m: None)  # a trial's score needs no interval
    else:
        request = EvalRequest(n=min(spec.eval_n, 1000), seed=spec.seed, echo=lambda m: None)
    result = evaluate_run(run, request)
    flat = {k: v for s in result.get("sections", []) for k, v in s["values"].items()}
    flat.update({k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    missing = [m for m in spec.metrics if m not in flat]
    if missing:
        raise ConfigError(f"the evaluation of {run} has no {', '.join(missing)}", "choose a metric of this modality")
    return {k: float(v) for k, v in flat.items()}


def sweep(spec: SweepSpec, echo: Callable[[str], None] = print) -> Path:
    """Run (or resume) the sweep with spec.workers processes, then write report.md and best.yaml."""
    params, directions, _ = spec.check()
    out = make_dirs(Path(spec.out))
    saved = out / "sweep.json"
    free = ("workers", "trials", "minutes", "seed")  # a machine joining a sweep gives its own --seed
    mine = {k: v for k, v in spec.__dict__.items() if k not in free}
    if saved.is_file():
        before = {k: v for k, v in json.loads(saved.read_text()).items() if k not in free}
        before.setdefault("space", None)  # written before named spaces existed
        if before != json.loads(json.dumps(mine)):
            raise ConfigError(f"{out} holds another sweep", "resume it with the same recipe, params and metrics, "
                                                            "or choose another --out")
    atomic_write_text(saved, json.dumps(spec.__dict__, indent=1))
    study = open_study(spec, directions)
    orphans = fail_orphans(spec, study)
    if orphans:
        echo(f"trials {orphans} were left running by a worker that died: marked failed, their slots run again")
    if counted(study) < spec.trials:
        if spec.workers == 1:
            run_worker(spec, echo=echo)
        else:
            threads = max(1, (os.cpu_count() or 1) // spec.workers)
            procs = [subprocess.Popen([sys.executable, "-m", "aigc", "sweep", "--worker", str(saved),
                                       "--threads", str(threads), "--worker-index", str(i)])
                     for i in range(spec.workers)]
            codes = [p.wait() for p in procs]
            if any(codes):
                raise ConfigError(f"{codes.count(0)} of {len(codes)} sweep workers finished cleanly",
                                  "see their messages above; run the same command again to resume")
    write_report(spec, open_study(spec, directions), echo)
    return out


def write_report(spec: SweepSpec, study: Any, echo: Callable[[str], None] = print) -> Path:
    optuna = _optuna()
    out = Path(spec.out)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    aims = [d.name.lower() for d in study.directions]
    spent = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials
             if t.datetime_start and t.datetime_complete]
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() / 60 if starts and ends else 0.0
    lines = [f"# Sweep of `{spec.recipe}`", "", f"Command: `{command_line(spec)}`", "",
             f"{len(done)} trials complete, {len(pruned)} pruned, {len(failed)} failed; "
             + ", ".join(f"{m} ({a})" for m, a in zip(spec.metrics, aims, strict=True))
             + f"; {spec.steps or 'recipe'} steps a trial; evaluation on {spec.eval_n} samples.", "",
             f"Budget: {sum(spent) / 60:.1f} minutes of trial time (training and evaluation) by {spec.workers} "
             f"worker(s) on {os.cpu_count()} cores, {wall:.1f} minutes from the first trial's start to the last's end.",
             "", "Searched: " + "; ".join(_range(p) for p in spec.check()[0]) + ".", ""]
    if not done:
        atomic_write_text(out / "report.md", "\n".join(lines + ["No trial has finished yet."]) + "\n")
        return out / "report.md"
    best = study.best_trials
    keys = sorted({k for t in done for k in t.params})
    ranked = sorted(done, key=lambda t: t.values[0] * (1 if study.directions[0].name == "MINIMIZE" else -1))
    title = "Pareto front" if len(spec.metrics) > 1 else "Best trials"
    head = ["| trial | " + " | ".join(spec.metrics) + " | " + " | ".join(keys) + " |",
            "|---" * (1 + len(spec.metrics) + len(keys)) + "|"]
    shown = best if len(spec.metrics) > 1 else ranked[:10]
    tables = [(title, shown)] + ([("Every complete trial", ranked)] if len(done) > len(shown) else [])
    for name, rows in tables:
        lines += [f"## {name}", "", *head]
        lines += [f"| {TRIAL_PREFIX}{t.number:04d} | " + " | ".join(f"{v:.4g}" for v in t.values) + " | "
                  + " | ".join(_fmt(t.params.get(k)) for k in keys) + " |" for t in rows]
        lines.append("")
    figures = _plots(study, out, len(spec.metrics) > 1, len(done), spec.metrics)
    if figures.get("importance") is not None:
        lines += ["", "## Parameter importances (fANOVA, first metric)", ""]
        lines += [f"- {k}: {v:.3f}" for k, v in figures.pop("importance").items()]
    for name, file in figures.items():
        lines += ["", f"## {name}", "", f"![{name}]({file})"]
    top = best[0] if len(spec.metrics) > 1 else ranked[0]
    cfg = yaml.safe_load((out / f"{TRIAL_PREFIX}{top.number:04d}" / "config.yaml").read_text())
    cfg["name"] = f"{spec.recipe}-sweep-best"
    cfg["description"] = (f"Best trial ({TRIAL_PREFIX}{top.number:04d}) of the sweep in {out}: "
                          + ", ".join(f"{m} {v:.4g}" for m, v in zip(spec.metrics, top.values, strict=True)))
    cfg["train"]["progress"] = True
    atomic_write_text(out / "best.yaml", yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    lines += ["", f"`best.yaml` is {TRIAL_PREFIX}{top.number:04d}'s config: `aigc train {out / 'best.yaml'}` "
              "trains it again (the same weights, on one machine)."]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    echo(f"best: {TRIAL_PREFIX}{top.number:04d} " + ", ".join(f"{m} {v:.4g}" for m, v in
                                                              zip(spec.metrics, top.values, strict=True)))
    return out / "report.md"


def command_line(spec: SweepSpec) -> str:
    """The `aigc sweep` command that makes (or resumes) this sweep."""
    parts = ["aigc sweep", spec.recipe, *([f"--space {spec.space}"] if spec.space else [])]
    parts += [f"--param {p}" for p in spec.params] + [f"--set {o}" for o in spec.overrides]
    parts += [f"--trials {spec.trials}", *([f"--steps {spec.steps}"] if spec.steps else []),
              *([f"--minutes {spec.minutes:g}"] if spec.minutes else []), f"--metric {','.join(spec.metrics)}",
              *([f"--direction {','.join(spec.directions)}"] if spec.directions else []),
              *([f"--workers {spec.workers}"] if spec.workers != 1 else []), f"--eval-n {spec.eval_n}",
              *([f"--seed {spec.seed}"] if spec.seed else []), f"--out {spec.out}"]
    return " ".join(parts)


def _range(p: Param) -> str:
    if p.kind == "choice":
        return f"{p.key} in {{{', '.join(_fmt(c) for c in p.choices)}}}"
    return f"{p.key} {p.kind} [{p.low:g}, {p.high:g}]"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _plots(study: Any, out: Path, multi: bool, n_done: int, names: list[str]) -> dict[str, Any]:
    """Optuna's matplotlib figures that apply; each one that cannot be drawn is left out."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vm

    warnings.filterwarnings("ignore", message=".*is experimental.*")
    figs: dict[str, Any] = {}
    first = (lambda t: t.values[0]) if multi else None  # plots and importances of the first metric
    named = {"target": first, "target_name": names[0]}
    wanted = [("History", "history.png", lambda: vm.plot_optimization_history(study, **named))]
    if n_done >= 2:
        wanted.append(("Parallel coordinates", "parallel.png", lambda: vm.plot_parallel_coordinate(study, **named)))
    if multi:
        wanted.append(("Pareto front", "pareto.png", lambda: vm.plot_pareto_front(study, target_names=names)))
    for title, file, draw in wanted:
        try:
            ax = draw()
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.savefig(out / file, dpi=80, bbox_inches="tight")
            plt.close(fig)
            figs[title] = file
        except Exception:  # a plot Optuna cannot draw for this study (too few trials, one value)
            plt.close("all")
    if n_done >= 3:
        try:
            import optuna

            # fANOVA (variance explained, either direction); Optuna 5's default, PED-ANOVA, ranks
            # parameters by how they reach *low* values, which misreads a metric to maximize
            figs["importance"] = optuna.importance.get_param_importances(
                study, target=first, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
        except Exception:
            pass
    return figs
