"""`aigc train / sample / eval` on a text run, as a user types them."""
from __future__ import annotations

import json
import math

import pytest
import yaml

from aigc.cli import main

NAMES = ["anna", "bella", "clara", "diana", "emma", "fiona", "greta", "hanna", "ida", "julia",
         "karla", "lena", "maria", "nora", "olga", "paula", "rosa", "sara", "tina", "vera"]


def test_train_sample_and_eval_a_names_file(tmp_path, capsys):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    cfg = {"name": "tiny", "data": {"source": f"lines:{data}", "test_fraction": 0.1},
           "model": {"name": "gru", "embed": 8, "hidden": 32},
           "train": {"steps": 30, "batch_size": 8, "lr": 0.01, "log_every": 10, "sample_every": 0, "threads": 1}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "tiny.yaml"), "--out", str(run), "--quiet"]) == 0
    assert (run / "samples.txt").is_file()
    assert json.loads((run / "data.json").read_text())["vocab"][0] == "a"

    capsys.readouterr()
    assert main(["sample", str(run), "--n", "7", "--prompt", "ma", "--temperature", "0.8", "--top-k", "5",
                 "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all(s.startswith("ma") for s in lines)

    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "more.txt")]) == 0
    assert len((tmp_path / "more.txt").read_text(encoding="utf-8").splitlines()) == 3

    capsys.readouterr()
    assert main(["sample", str(run), "--top-p", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: top-p is 2.0") and "Traceback" not in err

    assert main(["eval", str(run), "--n", "50"]) == 0
    scores = json.loads((run / "eval.json").read_text())
    assert 0 < scores["nll"] < math.log(28)  # better than uniform over a-z, end and unk
    assert scores["bpc"] == pytest.approx(scores["nll"] / math.log(2)) and scores["samples"] == 50


def test_a_missing_text_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "names-rnn", "--set", f"data.source=lines:{tmp_path}/nope.txt", "--out",
                 str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
