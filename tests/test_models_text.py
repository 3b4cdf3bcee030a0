"""Character models: memorising a tiny file, cached == uncached sampling, filtering, resume, the API."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

import aigc
from aigc.config import load_config
from aigc.data.text import text_dataset
from aigc.errors import ConfigError
from aigc.metrics.text import nll_per_char
from aigc.models.autoregressive import pick
from aigc.models.rnn import Elman
from aigc.run import build_model
from aigc.train import train

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia", "harper", "evelyn",
         "abigail", "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria"]
TINY = {
    "rnn": {"name": "rnn", "embed": 16, "hidden": 64},
    "gru": {"name": "gru", "embed": 16, "hidden": 64},
    "lstm": {"name": "lstm", "embed": 16, "hidden": 64},
    "transformer": {"name": "transformer", "layers": 2, "heads": 2, "width": 32},
}


def names_data(block_size: int = 64):
    return text_dataset("names20", {"train": NAMES}, kind="lines", block_size=block_size)


def config(model: dict, steps: int, **train) -> aigc.Config:
    return load_config({"name": "t", "data": {"source": "lines:unused"}, "model": model,
                        "train": {"steps": steps, "batch_size": 20, "lr": 0.01, "betas": [0.9, 0.99],
                                  "log_every": 50, "sample_every": 0, "ckpt_every": 0, "threads": 1,
                                  "progress": False, **train}})


@pytest.mark.parametrize("family", list(TINY))
def test_each_family_memorises_twenty_names(tmp_path, family):
    data = names_data()
    train(config(TINY[family], 300), tmp_path / family, data=data, echo=lambda m: None)
    run = aigc.load(tmp_path / family)
    nll, count = nll_per_char(run.model, data.train["x"])
    # Once memorised, the only uncertainty left is which of the 20 names starts: log(20) per name.
    floor = len(NAMES) * math.log(len(NAMES)) / count
    assert nll < floor + 0.08, (nll, floor)
    samples = run.sample(50, seed=0)
    assert sum(s in NAMES for s in samples) >= 45


@pytest.mark.parametrize("family", list(TINY))
def test_cached_and_uncached_sampling_draw_the_same_tokens(family):
    torch.manual_seed(0)
    model = build_model(TINY[family], names_data(block_size=6).meta)  # context 6: the window must slide
    for options in ({}, {"prompt": "av", "temperature": 0.7, "top_k": 5}, {"top_p": 0.8, "max_len": 40}):
        fast = model.sample(8, generator=torch.Generator().manual_seed(3), **options)
        slow = model.sample(8, generator=torch.Generator().manual_seed(3), cache=False, **options)
        assert fast == slow
        assert all(s.startswith(options.get("prompt", "")) for s in fast)


def test_the_kv_cache_gives_the_full_forward_logits():
    torch.manual_seed(0)
    model = build_model(TINY["transformer"], names_data().meta).eval()
    idx = torch.randint(3, model.vocab_size, (3, 9))
    full, _ = model(idx)
    state = model.init_state(3)
    prefix, state = model(idx[:, :4], state)          # a prompt in one go, then one token at a time
    steps = [prefix] + [model(idx[:, t:t + 1], state)[0] for t in range(4, 9)]
    assert state.length == 9
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_elman_layer_matches_torch_rnn_with_tanh():
    torch.manual_seed(0)
    ours, ref = Elman(5, 7, 2, "tanh", 0.0), torch.nn.RNN(5, 7, 2, batch_first=True)
    with torch.no_grad():
        for i in range(2):
            ours.ih[i].weight.copy_(getattr(ref, f"weight_ih_l{i}"))
            ours.ih[i].bias.copy_(getattr(ref, f"bias_ih_l{i}"))
            ours.hh[i].weight.copy_(getattr(ref, f"weight_hh_l{i}"))
            ours.hh[i].bias.copy_(getattr(ref, f"bias_hh_l{i}"))
    x, h0 = torch.randn(3, 4, 5), torch.randn(2, 3, 7)
    for a, b in zip(ours(x, h0), ref(x, h0), strict=True):
        torch.testing.assert_close(a, b)


def test_sigmoid_rnn_trains_and_samples():
    model = build_model({**TINY["rnn"], "activation": "sigmoid"}, names_data().meta)
    assert len(model.sample(3, generator=torch.Generator().manual_seed(0))) == 3


def test_top_k_and_top_p_never_leave_their_allowed_sets():
    g = torch.Generator().manual_seed(0)
    for trial in range(200):
        logits = torch.randn(4, 12, generator=g) * 3
        k = trial % 5 + 1
        allowed_k = logits.topk(k, -1).indices
        got = pick(logits, g, top_k=k)
        assert all(got[i] in allowed_k[i] for i in range(4))
        p = 0.2 + 0.7 * (trial % 7) / 7
        probs, order = logits.softmax(-1).sort(-1, descending=True)
        size = (probs.cumsum(-1) < p).sum(-1) + 1   # smallest prefix with mass >= p
        got = pick(logits, g, top_p=p)
        assert all(got[i] in order[i, :size[i]] for i in range(4))


def test_pick_draws_from_the_softmax_distribution():
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]]).repeat(20000, 1)
    counts = torch.bincount(pick(logits, torch.Generator().manual_seed(0)), minlength=4) / 20000
    torch.testing.assert_close(counts, logits[0].softmax(0), atol=0.015, rtol=0)
    assert pick(logits[:2], temperature=0).tolist() == [2, 2]


def test_resume_is_exact(tmp_path):
    """A run stopped half-way (only its step-20 checkpoint left) and resumed ends with the same weights."""
    data = names_data()
    cfg = config({**TINY["transformer"], "dropout": 0.1}, 40, ckpt_every=20, schedule="cosine", warmup=5, grad_clip=1.0)
    train(cfg, tmp_path / "once", data=data, echo=lambda m: None)
    shutil.copytree(tmp_path / "once", tmp_path / "twice")
    shutil.rmtree(tmp_path / "twice" / "checkpoints" / "step-00000040")
    train(cfg, tmp_path / "twice", data=data, resume=True, echo=lambda m: None)
    a, b = aigc.load(tmp_path / "once").model, aigc.load(tmp_path / "twice").model
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_sampling_options_and_bad_values(tmp_path):
    data = names_data()
    train(config(TINY["gru"], 150), tmp_path / "r", data=data, echo=lambda m: None)
    run = aigc.load(tmp_path / "r")
    novel = run.sample(10, seed=0, drop_copies=True, temperature=1.5)
    assert novel and not set(novel) & set(NAMES)
    assert all(len(s) <= 3 for s in run.sample(10, seed=0, max_len=3))
    assert run.sample(5, seed=1, prompt="é") == run.sample(5, seed=1, prompt="é")  # unseen character: no crash
    assert run.sample(4, seed=2) == run.sample(4, seed=2)
    for bad in ({"temperature": -1}, {"top_k": 0}, {"top_p": 1.5}, {"max_len": 0}, {"labels": "x"}):
        with pytest.raises(ConfigError):
            run.sample(2, **bad)


def test_the_learning_rate_warms_up_then_follows_the_cosine(tmp_path):
    cfg = config(TINY["rnn"], 12, log_every=1, schedule="cosine", warmup=4, min_lr=0.1)
    train(cfg, tmp_path / "r", data=names_data(), echo=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])       # step s uses (s + 1) / warmup
    assert lrs[4] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 8))))
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))
    groups = json.loads(next((tmp_path / "r" / "checkpoints").glob("step-*/state.json")).read_text())["param_groups"]
    assert groups["model"][0]["lr"] == 0.01                               # the stored rate stays nominal
