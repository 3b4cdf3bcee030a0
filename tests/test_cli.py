"""The `aigc` command as a user types it: recipes, train, sample, and one-line errors."""
import numpy as np
import pytest
import yaml
from PIL import Image

import aigc
from aigc.cli import main

from .conftest import run_cli, tiny_gan

FAST = ["--set", "train.progress=false", "--set", "train.threads=1"]


def test_recipes_lists_each_with_a_line(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in ("digits-gan", "fashion-gan", "fashion-dcgan", "fashion-wgan-gp", "fashion-cgan"):
        assert name in out


def test_train_then_sample_then_load(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "digits-gan", "--steps", "30", "--out", str(run), "--seed", "1", *FAST]) == 0
    assert (run / "samples.png").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 1
    out = tmp_path / "grid.png"
    assert main(["sample", str(run), "--n", "9", "--seed", "3", "--out", str(out)]) == 0
    assert Image.open(out).size == (3 * 8 + 4 * 2, 3 * 8 + 4 * 2)
    assert main(["sample", str(run), "--n", "5", "--seed", "3", "--format", "npz", "--out", str(tmp_path / "a.npz")]) == 0
    arr = np.load(tmp_path / "a.npz", allow_pickle=False)["x"]
    assert arr.shape == (5, 8, 8, 1) and arr.dtype == np.uint8
    model = aigc.load(run)
    again = (model.sample(5, seed=3) * 255).round().to(dtype=__import__("torch").uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(arr, again)  # same seed, same images, through CLI and API
    assert model.sample_pil(4).size == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)


def test_resume_extends_a_run(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "digits-gan", "--steps", "10", "--out", str(run), *FAST]) == 0
    assert main(["train", "--resume", "--out", str(run), "--steps", "20", *FAST]) == 0
    assert aigc.load(run).checkpoint.name == "step-00000020"


def test_config_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(tiny_gan()))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 0


def test_conditional_sample_by_label_name(tmp_path):
    cfg = tiny_gan(conditional=True)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 0
    assert main(["sample", str(tmp_path / "run"), "--label", "7", "--label", "3", "--n", "4",
                 "--out", str(tmp_path / "s.png")]) == 0
    m = aigc.load(tmp_path / "run")
    assert m.model.resolve_labels(["7", "3"], 4).tolist() == [7, 3, 7, 3]


@pytest.mark.parametrize("args, words", [
    (["train", "fashon-gan"], ["unknown recipe 'fashon-gan'", "fashion-gan"]),
    (["train", "digits-gan", "--set", "train.stpes=5"], ["train.stpes", "train.steps"]),
    (["train", "digits-gan", "--set", "data.source=folder:/nonexistent/x"], ["/nonexistent/x", "does not exist"]),
    (["train", "digits-gan", "--set", "data.source=fashion-mnist", "--set", "data.root=/nonexistent"],
     ["fashion-mnist", "data.root"]),
    (["train", "digits-gan", "--steps", "-5"], ["train.steps", "positive"]),
    (["sample", "/nonexistent/run"], ["not a run directory"]),
    (["trian"], ["unknown command 'trian'", "train"]),
    (["train", "digits-gan", "--stpes", "5"], ["--stpes", "--steps"]),
])
def test_bad_input_is_one_line_and_exit_2(args, words, tmp_path):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0]


def test_sampling_a_pickle_is_refused(tmp_path, capsys):
    evil = tmp_path / "model.pt"
    evil.write_bytes(b"\x80\x04not really")
    assert main(["sample", str(evil)]) == 2
    assert "never unpickles" in capsys.readouterr().err


def test_python_dash_m_and_console_script_agree():
    r = run_cli("--help")
    assert r.returncode == 0 and "train" in r.stdout


@pytest.mark.parametrize("flag", [["--temperature", "0.5"], ["--top-k", "3"], ["--prompt", "ab"], ["--drop-copies"],
                                  ["--format", "txt"]])
def test_options_a_family_does_not_take_are_one_line_errors(tmp_path, capsys, flag):
    run = tmp_path / "run"
    assert main(["train", "digits-gan", "--steps", "2", "--out", str(run), *FAST]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), *flag]) == 2
    err = capsys.readouterr().err.strip()
    name = flag[0] if flag[0] == "--format" else flag[0][2:].replace("-", "_")  # options by their API names
    assert err.count("\n") == 0 and name in err and ("does not apply" in err or "does not fit" in err)
