"""`aigc data audit|prepare` from the command line."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from aigc.cli import main


def test_data_audit_and_prepare_commands(tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(30):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "imgs" / "bad.png").write_bytes(b"junk")
    assert main(["data", "audit", f"folder:{tmp_path / 'imgs'}", "--out", str(tmp_path / "audit")]) == 0
    out = capsys.readouterr().out
    assert "unreadable 1" in out and "report written" in out
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert report["splits"]["train"]["n"] == 30

    assert main(["data", "prepare", "digits", "--out", str(tmp_path / "p"), "--image-size", "12"]) == 0
    assert "prepared:" in capsys.readouterr().out
    assert main(["data", "audit", f"prepared:{tmp_path / 'p'}", "--out", str(tmp_path / "a2")]) == 0


def test_data_commands_report_user_mistakes_in_one_line(tmp_path, capsys):
    assert main(["data", "audit", "fashion-mnits", "--out", str(tmp_path)]) == 2
    assert "did you mean 'fashion-mnist'" in capsys.readouterr().err
    assert main(["data", "audit", f"folder:{tmp_path / 'nope'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["data", "prepare", "digits", "--out", str(tmp_path / "p"), "--image-size", "0"]) == 2
    assert "data.image_size is 0" in capsys.readouterr().err
    assert main(["data", "audit", "digits", "--near", "2"]) == 2
    (tmp_path / "imgs").mkdir()
    assert main(["data", "audit", f"folder:{tmp_path / 'imgs'}", "--out", str(tmp_path / "imgs" / "r")]) == 2
    assert "inside the audited folder" in capsys.readouterr().err


def test_text_sources_are_audited_through_the_text_module(tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("anna\nbob\nbob\ncarla\n" * 5 + "dav\x07id\n", encoding="utf-8")
    assert main(["data", "audit", f"lines:{lines}", "--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["kind"] == "text" and report["suspicious"]["samples"] >= 1
