"""Reports that say what was run: the real data in the title, the model's own parameter count
(the EMA copy's apart), and `aigc sample --label` grids with one column per label."""
from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from PIL import Image

import aigc
from aigc.cli import main
from aigc.config import raw_config
from aigc.errors import ConfigError
from aigc.io import grid_shape, label_grid

from .conftest import tiny_gan

FAST = ["--quiet", "--set", "train.threads=1", "--set", "train.batch_size=16"]
SIDE = 8  # digits are 8x8; to_pil puts 2 pixels of padding around every cell


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder for the module's runs; the cache is the session's (as conftest sets it per test)."""
    root = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGC_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        mp.setenv("AIGC_OFFLINE", "1")
        yield root


@pytest.fixture(scope="module")
def cgan_on_digits(runs):
    """The Fashion-MNIST conditional recipe (it keeps an EMA of G) trained 2 steps on digits."""
    run = runs / "cgan"
    assert main(["train", "fashion-cgan", "--out", str(run), "--steps", "2", "--set", "data.source=digits",
                 "--set", "model.channels=4", *FAST]) == 0
    return run


def report_head(run) -> tuple[str, str, dict[str, str]]:
    """(title, description paragraph, the facts table) of a run's report.md."""
    lines = (run / "report.md").read_text().splitlines()
    table = dict(re.findall(r"^\| (.+?) \| (.*) \|$", "\n".join(lines), re.M))
    return lines[0], lines[2], table


# ---------------------------------------------------------------- 1. the data in the title

def test_a_recipe_trained_on_other_data_is_titled_by_that_data(cgan_on_digits):
    title, description, table = report_head(cgan_on_digits)
    assert title == "# Run `fashion-cgan` on `digits`"
    assert table["data"] == "digits"
    # the description names the real data first, and says whose data the recipe's words are about
    assert description.startswith("`fashion-cgan` trained on `digits`. The recipe was written for `fashion-mnist`")
    claim = raw_config("fashion-cgan")["description"]
    assert "Fashion-MNIST" in claim and not description.startswith(claim)
    assert "Fashion-MNIST" not in description.split("written for")[0]
    assert "Fashion-MNIST" not in title


def test_a_text_recipe_on_a_poem_does_not_say_it_writes_names(tmp_path):
    poems = tmp_path / "poems.txt"
    poems.write_text("\n".join(["the rose is red", "the sky is wide", "a bird in flight",
                                "the night is long", "a star so bright"] * 20) + "\n")
    run = tmp_path / "rnn"
    assert main(["train", "names-rnn", "--out", str(run), "--steps", "2", "--set", f"data.source=lines:{poems}",
                 "--set", "model.hidden=8", "--set", "model.embed=4", *FAST]) == 0
    title, description, _ = report_head(run)
    assert title == f"# Run `names-rnn` on `lines:{poems}`"
    assert description.startswith(f"`names-rnn` trained on `lines:{poems}`. The recipe was written for `names`")
    assert "writing new names" not in description.split("written for")[0]


def test_a_recipe_on_its_own_data_keeps_its_description_and_names_the_data(tmp_path):
    run = tmp_path / "gan"
    assert main(["train", "digits-gan", "--out", str(run), "--steps", "2", *FAST]) == 0
    title, description, _ = report_head(run)
    assert title == "# Run `digits-gan` on `digits`"
    assert description == raw_config("digits-gan")["description"].strip()


def test_a_description_the_user_wrote_is_kept_on_other_data(tmp_path):
    cfg = {**raw_config("digits-gan"), "description": "My own GAN on my folder of digits."}
    cfg["train"] = {**cfg["train"], "steps": 2}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "mine"
    assert main(["train", str(path), "--out", str(run), "--set", "data.limit=64", *FAST]) == 0
    assert report_head(run)[1] == "My own GAN on my folder of digits."


# ---------------------------------------------------------------- 2. parameters without the EMA copy

def test_the_parameter_count_is_the_models_own_and_the_ema_copy_is_apart(cgan_on_digits):
    _, _, table = report_head(cgan_on_digits)
    model = aigc.load(cgan_on_digits).model
    ema = sum(p.numel() for n, p in model.named_parameters() if n.startswith("g_ema."))
    own = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("g_ema."))
    assert ema == sum(p.numel() for p in model.G.parameters()) > 0  # the copy exists and is G's size
    assert table["parameters"] == f"{own:,} (trainable)"  # G + D, not G + D + G's copy
    assert table["parameters"] != f"{own + ema:,} (trainable)"
    assert table["EMA copy parameters"].startswith(f"{ema:,} (moving average of G")


def test_a_run_without_ema_has_no_ema_row(tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(_yaml(tmp_path, tiny_gan(ema=0))), "--out", str(run), *FAST]) == 0
    _, _, table = report_head(run)
    model = aigc.load(run).model
    assert table["parameters"] == f"{sum(p.numel() for p in model.parameters()):,} (trainable)"
    assert "EMA copy parameters" not in table


def _yaml(tmp_path, cfg):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# ---------------------------------------------------------------- 3. one column per label

def grid_size(rows: int, cols: int) -> tuple[int, int]:
    return cols * SIDE + (cols + 1) * 2, rows * SIDE + (rows + 1) * 2


def test_label_grid_puts_each_label_in_its_own_column():
    cells, cols = label_grid(["3", "7"], 18)
    assert cols == 2 and grid_shape(18, cols) == (9, 2)
    table = np.array(cells).reshape(9, 2)
    assert (table[:, 0] == "3").all() and (table[:, 1] == "7").all()
    cells, cols = label_grid([1, 2, 3], 7)  # uneven: counts differ by at most one, the rest is blank
    assert cols == 3 and grid_shape(7, cols) == (3, 3) and cells == [1, 2, 3, 1, 2, 3, 1]
    assert label_grid(["3"], 18) == (["3"], None) and label_grid(None, 5) == (None, None)
    with pytest.raises(ConfigError, match="fewer samples than the 3 labels"):
        label_grid([1, 2, 3], 2)


def test_sample_18_with_two_labels_draws_two_columns(cgan_on_digits, tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["sample", str(cgan_on_digits), "--n", "18", "--label", "3", "--label", "7", "--seed", "1",
                 "--out", str(out)]) == 0
    assert "(9 rows x 2 columns, one column per label: 3, 7)" in capsys.readouterr().out
    assert Image.open(out).size == grid_size(9, 2)  # not the square default's 5 x 4
    loaded = aigc.load(cgan_on_digits)
    cells, cols = label_grid(["3", "7"], 18)
    ids = loaded.model.resolve_labels(cells, 18).view(-1, cols)  # the labels the model draws, cell by cell
    assert ids[:, 0].tolist() == [3] * 9 and ids[:, 1].tolist() == [7] * 9
    # the file holds exactly those samples in that order: the same seed through the API, laid out the same
    again = np.asarray(loaded.sample_pil(18, seed=1, labels=["3", "7"]))
    assert np.array_equal(np.asarray(Image.open(out)), again)


def test_uneven_n_pads_the_last_row_with_blank_cells(cgan_on_digits, tmp_path, capsys):
    out = tmp_path / "u.png"
    assert main(["sample", str(cgan_on_digits), "--n", "7", "--label", "1", "--label", "2", "--label", "3",
                 "--out", str(out)]) == 0
    assert "(3 rows x 3 columns" in capsys.readouterr().out
    arr = np.asarray(Image.open(out))
    assert arr.shape[::-1][:2] == grid_size(3, 3)
    last_row = arr[2 + 2 * (SIDE + 2):, :]
    blank = last_row[:, 2 + SIDE + 2:]  # cells 2 and 3 of the last row: nothing drawn
    assert (blank == 255).all() and not (last_row[:, :2 + SIDE] == 255).all()


def test_fewer_samples_than_labels_is_refused_in_one_line(cgan_on_digits, tmp_path, capsys):
    out = tmp_path / "f.png"
    code = main(["sample", str(cgan_on_digits), "--n", "2", "--label", "1", "--label", "2", "--label", "3",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "fewer samples than the 3 labels" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
