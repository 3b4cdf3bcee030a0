"""The trainer: run files, exact resume, checkpoints, recovery from divergence."""
import json
import os
import signal
import threading

import pytest
import torch
from safetensors.torch import load_file

from aigc.config import load_config
from aigc.errors import ConfigError, TrainingDiverged
from aigc.train import train
from aigc.train.checkpoint import list_checkpoints
from aigc.train.loop import BatchOrder

from .conftest import tiny_gan


def weights(run_dir):
    return load_file(str(list_checkpoints(run_dir)[-1] / "model.safetensors"))


def test_a_run_writes_its_card(tmp_path):
    result = train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    run = result.run_dir
    assert result.step == 20 and not result.interrupted
    for name in ("config.yaml", "data.json", "metrics.jsonl", "samples.png", "curves.png", "report.md"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000010.png", "step-00000020.png"]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20] and all("d_loss" in r and "g_loss" in r for r in rows)
    assert [p.name for p in list_checkpoints(run)] == ["step-00000000", "step-00000010", "step-00000020"]
    assert "samples.png" in (run / "report.md").read_text()
    assert any((run / "tb").iterdir())


@pytest.mark.parametrize("model", [{}, {"loss": "wgan-gp", "n_critic": 2}, {"conditional": True, "loss": "hinge"}])
def test_resume_is_byte_identical(tmp_path, model):
    cfg = tiny_gan(**model)
    train(load_config(cfg), tmp_path / "once", echo=lambda m: None)
    half = load_config(cfg, ["train.steps=10"])
    train(half, tmp_path / "twice", echo=lambda m: None)
    train(load_config(cfg), tmp_path / "twice", resume=True, echo=lambda m: None)
    a, b = weights(tmp_path / "once"), weights(tmp_path / "twice")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    opt_a = load_file(str(list_checkpoints(tmp_path / "once")[-1] / "optim.safetensors"))
    opt_b = load_file(str(list_checkpoints(tmp_path / "twice")[-1] / "optim.safetensors"))
    assert all(torch.equal(opt_a[k], opt_b[k]) for k in opt_a)
    steps = [json.loads(x)["step"] for x in (tmp_path / "twice" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]


def test_resume_from_an_odd_step_replays_the_same_batches(tmp_path):
    cfg = tiny_gan()
    cfg["train"].update(steps=23, ckpt_every=7)
    train(load_config(cfg), tmp_path / "once", echo=lambda m: None)
    train(load_config(cfg, ["train.steps=7"]), tmp_path / "twice", echo=lambda m: None)
    train(load_config(cfg), tmp_path / "twice", resume=True, echo=lambda m: None)
    a, b = weights(tmp_path / "once"), weights(tmp_path / "twice")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_existing_run_is_not_overwritten(tmp_path):
    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    before = weights(tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    after = weights(tmp_path / "run")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_cannot_change_the_model(tmp_path):
    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    with pytest.raises(ConfigError, match="cannot change 'model'"):
        train(load_config(tiny_gan(z_dim=9)), tmp_path / "run", resume=True, echo=lambda m: None)


def test_keep_last_prunes_old_checkpoints(tmp_path):
    cfg = tiny_gan()
    cfg["train"].update(steps=40, ckpt_every=5, keep_last=2)
    train(load_config(cfg), tmp_path / "run", echo=lambda m: None)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-00000035", "step-00000040"]


def test_absurd_learning_rate_rolls_back_then_stops_cleanly(tmp_path):
    cfg = tiny_gan(loss="wgan-gp")
    cfg["train"].update(lr=1e30, steps=50, max_rollbacks=3)
    messages = []
    with pytest.raises(TrainingDiverged, match="3 rollbacks"):
        train(load_config(cfg), tmp_path / "run", echo=messages.append)
    assert sum("rolled back" in m for m in messages) == 3
    assert "x0.125" in [m for m in messages if "rolled back" in m][-1]
    for ckpt in list_checkpoints(tmp_path / "run"):  # nothing non-finite was ever written
        w = load_file(str(ckpt / "model.safetensors"))
        assert all(torch.isfinite(v).all() for v in w.values() if v.is_floating_point())


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    cfg = tiny_gan()
    cfg["train"].update(steps=100000, ckpt_every=0, log_every=1000)
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    result = train(load_config(cfg), tmp_path / "run", echo=lambda m: None)
    timer.join()
    assert result.interrupted and 0 < result.step < 100000
    assert list_checkpoints(tmp_path / "run")[-1].name == f"step-{result.step:08d}"
    more = train(load_config(cfg, [f"train.steps={result.step + 5}"]), tmp_path / "run", resume=True,
                 echo=lambda m: None)
    assert more.step == result.step + 5


def test_batch_order_is_a_function_of_the_step():
    a, b = BatchOrder(100, 32, 0), BatchOrder(100, 32, 0)
    seq = [a.indices(s) for s in range(7)]
    assert torch.equal(b.indices(5), seq[5]) and torch.equal(b.indices(1), seq[1])
    epoch0 = torch.cat(seq[:3])
    assert len(set(epoch0.tolist())) == 96  # without replacement within an epoch
    assert not torch.equal(seq[0], seq[3])  # a new permutation each epoch
    assert BatchOrder(10, 64, 0).indices(0).numel() == 10  # batch clamps to tiny data


def test_the_best_checkpoint_survives_rotation(tmp_path):
    cfg = tiny_gan()
    cfg["train"].update(steps=40, ckpt_every=5, keep_last=2, eval_every=10)
    scores = iter([3.0, 1.0, 2.0, 4.0])  # step 20 is the best
    train(load_config(cfg), tmp_path / "run", evaluator=lambda m, d: {"fid": next(scores)}, echo=lambda m: None)
    names = [p.name for p in list_checkpoints(tmp_path / "run")]
    assert "step-00000020" in names and names[-2:] == ["step-00000035", "step-00000040"]
    import aigc

    assert aigc.load(tmp_path / "run", "best").checkpoint.name == "step-00000020"


def test_asking_for_best_without_a_mark_is_an_error(tmp_path):
    import aigc
    from aigc.errors import CheckpointError

    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    with pytest.raises(CheckpointError, match="marked best"):
        aigc.load(tmp_path / "run", "best")


def test_resume_applies_a_changed_learning_rate(tmp_path):
    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    from aigc.train.loop import Trainer

    t = Trainer(load_config(tiny_gan(), ["train.lr=1e-5", "train.steps=30"]), tmp_path / "run", resume=True,
                echo=lambda m: None)
    assert all(g["lr"] == 1e-5 for o in t.opts.values() for g in o.param_groups)


def test_a_checkpoint_of_another_shape_is_one_clear_error(tmp_path):
    import yaml as _yaml

    import aigc
    from aigc.errors import CheckpointError

    train(load_config(tiny_gan()), tmp_path / "run", echo=lambda m: None)
    path = tmp_path / "run" / "config.yaml"
    cfg = _yaml.safe_load(path.read_text())
    cfg["model"]["g_hidden"] = [33]  # edited after training: the weights no longer fit
    path.write_text(_yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        aigc.load(tmp_path / "run")


def test_a_checkpoint_between_log_rows_records_the_time_trained(tmp_path):
    """Training minutes per checkpoint feed the equal-minutes benchmarks: none may lag behind its step."""
    cfg = tiny_gan()
    cfg["train"].update(steps=12, log_every=50, ckpt_every=4, keep_last=5, sample_every=0)
    run = train(load_config(cfg), tmp_path / "run", echo=lambda m: None).run_dir
    times = [json.loads((c / "state.json").read_text())["elapsed"] for c in list_checkpoints(run)]
    assert len(times) == 4 and 0 == times[0] < times[1] < times[2] < times[3]  # step 0, 4, 8, 12
