"""`aigc sweep`: tiny Optuna sweeps of digits-gan, run as a user runs them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from aigc.cli import main
from aigc.sweep import SweepSpec, open_study, run_worker, write_report

from .conftest import ROOT

FAST = ["--eval-n", "200", "--set", "train.threads=1", "--set", "train.sample_every=0"]


def states(out) -> dict[int, str]:
    """Trial number -> state, read from the sweep's journal through Optuna."""
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
    study = optuna.load_study(study_name="aigc", storage=storage)
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False)}


def weights(run, step):
    return load_file(str(run / "checkpoints" / f"step-{step:08d}" / "model.safetensors"))


@pytest.mark.parametrize("spec, words", [
    ("train.lr", "is not a search range"),
    ("train.lr=gaussian:0:1", "is not a search range"),
    ("train.lr=loguniform:0:1", "a log range must be positive"),
    ("train.lr=uniform:2:1", "LOW < HIGH"),
    ("train.batch_size=int:1.5:4", "whole numbers"),
    ("model.loss=choice:bce,bce", "distinct"),
    ("train.lrr=uniform:0.1:0.2", "unknown key 'train.lrr'"),
])
def test_a_bad_search_range_is_one_line(tmp_path, capsys, spec, words):
    assert main(["sweep", "digits-gan", "--param", spec, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err


def test_a_tiny_sweep_reports_and_its_best_config_trains_the_same_weights(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "digits-gan", "--param", "train.lr=loguniform:1e-4:1e-2",
                 "--param", "model.loss=choice:bce,hinge", "--trials", "3", "--steps", "50",
                 "--out", str(out), *FAST]) == 0
    final = list(states(out).values())
    # the median pruner may stop the third trial (its FID depends on the feature network a test
    # session trained first); the first two always run to the end
    assert len(final) == 3 and final[:2] == ["COMPLETE"] * 2 and final[2] in ("COMPLETE", "PRUNED")
    report = (out / "report.md").read_text()
    assert f"{final.count('COMPLETE')} trials complete, {final.count('PRUNED')} pruned" in report
    assert "| trial | fid |" in report and (out / "history.png").is_file()
    best = next(line.split("|")[1].strip() for line in report.splitlines() if line.startswith("| trial-"))
    assert main(["train", str(out / "best.yaml"), "--out", str(tmp_path / "again"), "--quiet"]) == 0
    a, b = weights(out / best, 50), weights(tmp_path / "again", 50)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert main(["sample", str(out / best), "--n", "4"]) == 0  # each trial is an ordinary run


def test_a_killed_sweep_resumes_without_losing_or_repeating_trials(tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "aigc", "sweep", "digits-gan", "--param", "train.lr=loguniform:1e-4:1e-2",
           "--trials", "3", "--steps", "300", "--out", str(out), *FAST]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 240
    while not (out / "trial-0001" / "checkpoints").is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # trial 0 finished, trial 1 under way
    proc.wait()
    before = states(out)
    assert before[0] == "COMPLETE" and before[1] == "RUNNING"
    first = (out / "trial-0000" / "checkpoints" / "step-00000300" / "model.safetensors").stat().st_mtime_ns
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "left running by a worker that died" in done.stdout
    after = states(out)
    finished = [st for st in after.values() if st in ("COMPLETE", "PRUNED")]
    assert after[0] == "COMPLETE" and after[1] == "FAIL" and len(finished) == 3
    assert (out / "trial-0000" / "checkpoints" / "step-00000300" / "model.safetensors").stat().st_mtime_ns == first


def test_two_workers_never_share_a_trial(tmp_path):
    out = tmp_path / "sweep"
    assert main(["sweep", "digits-gan", "--param", "train.lr=loguniform:1e-4:1e-2", "--trials", "4",
                 "--steps", "40", "--workers", "2", "--out", str(out), *FAST]) == 0
    final = states(out)
    assert sum(s in ("COMPLETE", "PRUNED") for s in final.values()) >= 4
    for n, state in final.items():  # each trial trained its own folder, once (to the end unless pruned)
        cfg = (out / f"trial-{n:04d}" / "config.yaml").read_text()
        assert f"name: trial-{n:04d}" in cfg
        last = sorted(p.name for p in (out / f"trial-{n:04d}" / "checkpoints").glob("step-*"))[-1]
        assert (last == "step-00000040") == (state == "COMPLETE")
    assert os.getpid() not in set(_pids(out))  # the trials ran in the worker processes
    lrs = [yaml.safe_load((out / f"trial-{n:04d}" / "config.yaml").read_text())["train"]["lr"] for n in final]
    assert len(set(lrs)) == len(lrs)  # each worker samples with its own seed: no config is trained twice


def _pids(out):
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
    study = optuna.load_study(study_name="aigc", storage=storage)
    return [t.user_attrs["pid"] for t in study.get_trials(deepcopy=False)]


def test_a_hopeless_trial_is_pruned_and_marked_so(tmp_path):
    spec = SweepSpec(recipe="digits-gan", params=["train.lr=loguniform:1e-10:1e-2"], trials=3, out=str(tmp_path / "s"),
                     steps=150, eval_n=200, eval_every=50, prune_warmup=0,
                     overrides=["train.threads=1", "train.sample_every=0", "train.eval_n=200"])
    (tmp_path / "s").mkdir()
    study = open_study(spec, ["minimize"])
    for lr in (2e-3, 2e-3, 1e-10):  # the last one cannot learn: its FID stays where it started
        study.enqueue_trial({"train.lr": lr})
    run_worker(spec, echo=lambda m: None)
    final = states(tmp_path / "s")
    assert final[2] == "PRUNED" and [final[0], final[1]] == ["COMPLETE", "COMPLETE"]
    write_report(spec, open_study(spec, ["minimize"]), echo=lambda m: None)
    assert "2 trials complete, 1 pruned" in (tmp_path / "s" / "report.md").read_text()


@pytest.mark.parametrize("args, words", [
    (["digits-gan", "--space", "lucic"], "unknown --space 'lucic'"),
    (["names-rnn", "--space", "lucic-wide"], "is for GAN recipes"),
])
def test_a_bad_space_is_one_line(tmp_path, capsys, args, words):
    assert main(["sweep", *args, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err


def test_a_named_space_searches_its_ranges_and_a_param_replaces_one(tmp_path):
    """lucic-wide on a BCE recipe: lr, beta1 and n_critic, no gp_weight; beta1 lands in train.betas."""

    out = tmp_path / "sweep"
    assert main(["sweep", "digits-gan", "--space", "lucic-wide", "--param", "train.lr=loguniform:1e-4:2e-4",
                 "--trials", "2", "--steps", "20", "--out", str(out), *FAST]) == 0
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
    trials = optuna.load_study(study_name="aigc", storage=storage).get_trials()
    assert len(trials) == 2
    for t in trials:
        assert set(t.params) == {"train.lr", "train.beta1", "model.n_critic"}
        assert 1e-4 <= t.params["train.lr"] <= 2e-4 and 0 <= t.params["train.beta1"] <= 0.95
        cfg = yaml.safe_load((out / f"trial-{t.number:04d}" / "config.yaml").read_text())
        assert cfg["train"]["betas"] == [t.params["train.beta1"], 0.999]
        assert cfg["model"]["n_critic"] == t.params["model.n_critic"]
    spec = SweepSpec(recipe="fashion-wgan-gp", params=[], trials=1, out=str(tmp_path / "x"), space="lucic-narrow")
    assert "model.gp_weight" in {p.key for p in spec.check()[0]}  # a loss with a penalty searches its weight
