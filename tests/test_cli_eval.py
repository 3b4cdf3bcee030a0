"""`aigc eval`: a run (with the floor next to it), the real floor alone, and clear one-line errors."""
from __future__ import annotations

import json

import pytest

from aigc.cli import main


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A folder for the module's runs; the cache is the session's (as conftest sets it per test)."""
    root = tmp_path_factory.mktemp("eval")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGC_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield root


@pytest.fixture(scope="module")
def cgan_run(cache):
    """A few steps of the conditional recipe on 256 images, with the cheap eval every 2 steps."""
    run = cache / "cgan"
    code = main(["train", "fashion-cgan", "--out", str(run), "--quiet", "--steps", "4",
                 "--set", "data.limit=256", "--set", "train.eval_every=2", "--set", "train.eval_n=64",
                 "--set", "model.channels=8", "--set", "train.threads=1"])
    assert code == 0
    return run


def test_training_logs_a_cheap_fid_and_marks_the_best_checkpoint(cgan_run):
    rows = [json.loads(line) for line in (cgan_run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "fid" in r]
    assert [r["step"] for r in evals] == [2, 4] and all(r["fid"] > 0 and "kid" in r for r in evals)
    best = json.loads((cgan_run / "checkpoints" / "best.json").read_text())
    assert best["metric"] == "fid" and best["value"] == min(r["fid"] for r in evals)
    assert (cgan_run / "checkpoints" / best["checkpoint"]).is_dir()


def test_eval_of_a_run_prints_a_table_writes_json_figures_and_the_report(cgan_run, capsys):
    code = main(["eval", str(cgan_run), "--n", "160", "--checkpoint", "best",
                 "--metrics", "fid,kid,is,prdc", "--metrics", "conditional,memorization"])
    assert code == 0
    out = capsys.readouterr().out
    assert "fid" in out and "real floor" in out and "label_accuracy/Ankle boot" in out
    result = json.loads((cgan_run / "eval.json").read_text())
    names = [s["name"] for s in result["sections"]]
    assert names == ["fid", "kid", "is", "prdc", "conditional", "memorization"]
    for s in result["sections"]:  # every result says what it measured against and with what
        assert s["n"] > 0 and s["against"] and s["features"] == "aigc-cnn-v1-fashion-mnist"
    fid = result["sections"][0]
    assert fid["n"] == 160 and fid["against"] == "test split (160 real images)"
    floor = {s["name"]: s["values"] for s in result["floor"]["sections"]}
    assert floor["fid"]["fid"] < fid["values"]["fid"]  # real images beat a 4-step generator
    assert (cgan_run / "eval-closest-pairs.png").is_file()
    report = (cgan_run / "report.md").read_text()
    assert "## Evaluation" in report and "real floor" in report
    main(["eval", str(cgan_run), "--n", "50", "--metrics", "fid", "--no-floor"])
    assert (cgan_run / "report.md").read_text().count("## Evaluation") == 1  # replaced, not appended


def test_eval_real_gives_the_floor(cache, capsys):
    out_json = cache / "floor.json"
    assert main(["eval", "--real", "fashion-mnist", "--n", "200", "--metrics", "fid,prdc",
                 "--out", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["kind"] == "real" and [s["name"] for s in result["sections"]] == ["fid", "prdc"]
    assert result["sections"][1]["values"]["precision"] > 0.5


@pytest.mark.parametrize("argv, words", [
    (["eval"], "run directory or --real"),
    (["eval", "--real", "fashoin-mnist"], "did you mean 'fashion-mnist'"),
    (["eval", "--real", "digits", "--metrics", "fdi"], "did you mean 'fid'"),
    (["eval", "--real", "digits", "--n", "1"], "--n is 1"),
    (["eval", "no/such/run"], "not a run directory"),
    (["eval", "--real", "digits", "--inception-weights", "pt_inception.pth"], "never unpickles"),
    (["eval", "--real", "digits", "--out", "pt_inception.pth/eval.json"], "cannot write to pt_inception.pth"),
    (["eval", "--samples", "pt_inception.pth", "--real", "digits"], "not a folder of images or an .npz"),
    (["eval", "--samples", "x.npz"], "--samples needs --real"),
    (["eval", "--real", "digits", "--intervals", "1"], "--intervals is 1"),
    (["eval", "--real", "digits", "--intervals", "-3"], "--intervals is -3"),
])
def test_bad_input_is_one_clear_line(cache, capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pt_inception.pth").write_bytes(b"\x80\x02}q\x00.")  # a pickle: refused before it is opened
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pt_inception.pth"]  # no folder left behind


def test_an_option_a_modality_does_not_honour_is_refused():
    from aigc.errors import ConfigError
    from aigc.metrics import EvalRequest
    from aigc.plugins import MODALITIES

    text = MODALITIES.get("text")
    EvalRequest(n=10, seed=3).refuse_unhonoured(text.eval_options, "text runs")  # common fields always apply
    with pytest.raises(ConfigError, match="--metrics does not apply to text runs"):
        EvalRequest(metrics=["fid"]).refuse_unhonoured(text.eval_options, "text runs")
    with pytest.raises(ConfigError, match="--no-floor does not apply to text runs"):
        EvalRequest(floor=False).refuse_unhonoured(text.eval_options, "text runs")
    EvalRequest(metrics=["fid"], floor=False).refuse_unhonoured(MODALITIES.get("image").eval_options, "image runs")


def test_eval_of_a_vae_adds_its_likelihood_bounds(cache, capsys):
    run = cache / "vae"
    assert main(["train", "digits-vae", "--out", str(run), "--quiet", "--steps", "30",
                 "--set", "train.threads=1"]) == 0
    assert main(["eval", str(run), "--n", "200", "--metrics", "fid,likelihood", "--iwae-k", "20",
                 "--likelihood-n", "50", "--no-floor", "--quiet"]) == 0
    result = json.loads((run / "eval.json").read_text())
    (lik,) = [s for s in result["sections"] if s["name"] == "likelihood"]
    v = lik["values"]
    assert lik["n"] == 50 and {"elbo_nll_nats", "iwae20_nll_nats", "elbo_bits_per_dim"} <= set(v)
    assert 0 < v["iwae20_nll_nats"] <= v["elbo_nll_nats"]  # the IWAE bound is tighter than the ELBO
    assert main(["eval", str(run), "--iwae-k", "0"]) == 2


@pytest.fixture(scope="module")
def digits_samples(cache):
    """A short digits-gan run and 300 of its samples written by `aigc sample` (seed 0, as eval draws them)."""
    run = cache / "digits"
    assert main(["train", "digits-gan", "--out", str(run), "--quiet", "--steps", "30",
                 "--set", "train.threads=1"]) == 0
    assert main(["sample", str(run), "--n", "300", "--seed", "0", "--out", str(cache / "s.npz")]) == 0
    return run, cache / "s.npz"


COMMON = ["--n", "300", "--metrics", "fid,kid,prdc"]


def test_samples_written_by_aigc_sample_give_the_runs_own_figures(digits_samples, capsys, tmp_path):
    """`aigc eval --samples` on `aigc sample` output = `aigc eval RUN`: same images, features, real set."""
    run, samples = digits_samples
    assert main(["eval", str(run), *COMMON, "--out", str(tmp_path / "run.json")]) == 0
    assert main(["eval", "--samples", str(samples), "--real", "digits", *COMMON, "--out", str(tmp_path / "s.json")]) == 0
    assert "300 images from" in capsys.readouterr().out
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("run.json", "s.json"))
    assert b["kind"] == "samples" and b["samples"] == str(samples)
    assert [s["values"] for s in a["sections"]] == [s["values"] for s in b["sections"]]
    assert a["floor"]["sections"] == b["floor"]["sections"] and a["sections"][0]["values"]["fid"] > 0
    fid, kid, prdc = a["sections"]  # 95% intervals around KID and the four k-NN numbers, each holding its value
    for s, keys in ((kid, ["kid"]), (prdc, ["precision", "recall", "density", "coverage"])):
        for k in keys:
            lo, hi = s["intervals"][k]
            assert lo <= s["values"][k] <= hi
    assert kid["intervals"]["kid"][0] < kid["intervals"]["kid"][1]
    assert fid["intervals"] == {} and "no interval: a half-sample would hold fewer than 129" in fid["note"]
    assert a["n"] == 300 and a["n_real"] == 180  # digits has 180 test images: said, and warned about
    assert main(["eval", str(run), *COMMON, "--intervals", "0", "--no-floor", "--out", str(tmp_path / "no.json")]) == 0
    plain = json.loads((tmp_path / "no.json").read_text())
    assert all(s["intervals"] == {} for s in plain["sections"])
    assert [s["values"] for s in plain["sections"]] == [s["values"] for s in a["sections"]]
    out = capsys.readouterr().out
    assert "note: only 180 real test images to measure against (300 on the other side" in out


def test_an_eval_with_out_leaves_the_run_alone_and_names_its_files(cgan_run, tmp_path):
    report = (cgan_run / "report.md").read_bytes()
    for name in ("first", "second"):
        assert main(["eval", str(cgan_run), "--n", "60", "--metrics", "memorization", "--no-floor", "--quiet",
                     "--out", str(tmp_path / f"{name}.json")]) == 0
    assert (cgan_run / "report.md").read_bytes() == report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first-closest-pairs.png", "first.json",
                                                          "second-closest-pairs.png", "second.json"]
    result = json.loads((tmp_path / "second.json").read_text())
    assert result["sections"][0]["files"] == [str(tmp_path / "second-closest-pairs.png")]


def test_compare_puts_runs_and_samples_on_one_evaluator(digits_samples, capsys, tmp_path):
    run, samples = digits_samples
    out = tmp_path / "cmp"
    assert main(["compare", str(run), str(samples), *COMMON, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    table = json.loads((out / "compare.json").read_text())
    (a, b), floor = table["rows"], table["floor"]
    assert a["kind"] == "run" and b["kind"] == "samples" and a["values"] == b["values"]  # the same images
    assert floor["values"]["fid"] < a["values"]["fid"]  # real data beats 30 steps of training
    assert str(samples) in printed and "real floor" in printed and "fid" in printed.splitlines()[0]
    assert (out / "compare.png").stat().st_size > 1000 and (out / "compare.md").is_file()


@pytest.mark.parametrize("argv, words", [
    (["compare", "RUN"], "two or more"),
    (["compare", "RUN", "no/such.npz"], "neither a run directory nor a samples file"),
    (["compare", "SAMPLES", "SAMPLES"], "add --real SOURCE"),
    (["compare", "RUN", "SAMPLES", "--real", "fashion-mnist"], "not on --real fashion-mnist"),
])
def test_compare_refuses_in_one_line(digits_samples, capsys, argv, words):
    run, samples = digits_samples
    argv = [{"RUN": str(run), "SAMPLES": str(samples)}.get(a, a) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err


def test_text_samples_from_a_file_get_the_sample_metrics(capsys, tmp_path):
    lines = [f"{a}{b}{c}" for a in "bcdfg" for b in "aeiou" for c in "lmnrst"]  # 150 names
    (tmp_path / "real.txt").write_text("\n".join(lines) + "\n")
    train_like = lines[:40]  # most of these are training lines: little novelty
    (tmp_path / "copies.txt").write_text("\n".join(train_like) + "\n")
    (tmp_path / "new.txt").write_text("\n".join(f"zz{x}" for x in lines[:40]) + "\n")
    got = {}
    for name in ("copies", "new"):
        assert main(["eval", "--samples", str(tmp_path / f"{name}.txt"), "--real", f"lines:{tmp_path / 'real.txt'}",
                     "--out", str(tmp_path / f"{name}.json")]) == 0
        got[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert got["new"]["novelty"] == 1.0 and got["copies"]["novelty"] < 0.5 and got["new"]["samples"] == 40
    assert got["new"]["length_mean_generated"] == 5.0 and got["copies"]["length_w1"] == 0.0
    assert "nll" not in got["new"]  # no model, no likelihood


def test_a_folder_of_larger_samples_is_shaped_like_the_real_images(capsys, tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "samples"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["eval", "--samples", str(folder), "--real", "digits", "--metrics", "fid",
                 "--no-floor", "--out", str(tmp_path / "e.json")]) == 0
    assert "the samples are 16x16x1; shaped to the real images' 8x8x1" in capsys.readouterr().err
    assert json.loads((tmp_path / "e.json").read_text())["n"] == 12
