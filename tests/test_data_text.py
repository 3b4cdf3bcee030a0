"""Text sources: vocabularies, padded rows, splits, Unicode and bad input."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.data.text import BOS, EOS, PAD, UNK, Vocab, encode_rows, load_text_samples, text_dataset
from aigc.errors import DataError
from aigc.metrics.text import decode_split

POEM = ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡", "白日依山尽", "黄河入海流"]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_rows_start_and_end_with_the_line_token_and_pad_after():
    vocab = Vocab.build(["ab", "abc"])
    x, cut = encode_rows(["ab", "c", "abca"], vocab, width=5, end=True)
    a, b, c = (vocab.index[ch] for ch in "abc")
    assert x.tolist() == [[BOS, a, b, EOS, PAD], [BOS, c, EOS, PAD, PAD], [BOS, a, b, c, a]]
    assert cut == 1  # "abca" lost its end token to the width


def test_unseen_characters_become_unk_and_never_crash():
    vocab = Vocab.build(["hello"])
    assert vocab.encode("hex!") == [vocab.index["h"], vocab.index["e"], UNK, UNK]
    assert vocab.encode_array("hex!").tolist() == vocab.encode("hex!")
    assert vocab.decode(vocab.encode("hex")) == "he\ufffd"


def test_chinese_lines_round_trip(tmp_path):
    cfg = DataConfig(source="lines:" + write(tmp_path, "poem.txt", "\n".join(POEM) + "\n"), test_fraction=0.0)
    ds = load_dataset(cfg)
    assert ds.modality == "text" and ds.meta["kind"] == "lines"
    assert decode_split(ds.train["x"], ds.meta) == POEM
    assert set(ds.meta["vocab"]) == set("".join(POEM))


def test_lines_splits_are_deterministic_disjoint_and_recorded(tmp_path):
    lines = [f"line {i}" for i in range(50)]
    cfg = DataConfig(source="lines:" + write(tmp_path, "l.txt", "\n\n".join(lines)), test_fraction=0.1)
    splits = load_text_samples(cfg)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [40, 5, 5]
    assert sorted(sum(splits.values(), [])) == sorted(lines)  # empty lines dropped, nothing lost
    assert load_text_samples(cfg) == splits
    ds = load_dataset(cfg)
    assert decode_split(ds.test["x"], ds.meta) == splits["test"]
    assert decode_split(ds.val["x"], ds.meta) == splits["val"]
    assert ds.meta["n_test"] == 5 and ds.meta["split"]["seed"] == cfg.split_seed
    other = load_text_samples(DataConfig(source=cfg.source, split_seed=1))
    assert other["test"] != splits["test"]


def test_text_source_cuts_windows_and_splits_the_stream_in_order(tmp_path):
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    cfg = DataConfig(source="text:" + write(tmp_path, "t.txt", text), block_size=32, test_fraction=0.1)
    samples = load_text_samples(cfg)
    assert "".join(samples["train"] + samples["val"] + samples["test"]) == text
    assert all(len(w) == 32 for w in samples["train"][:-1])
    ds = load_dataset(cfg)
    assert ds.train["x"].shape[1] == 33 and ds.meta["block_size"] == 32
    assert (ds.train["x"][:, 0] == BOS).all()
    assert decode_split(ds.train["x"], ds.meta) == samples["train"]


def test_the_builtin_names_are_lower_case_and_unique():
    samples = load_text_samples(DataConfig(source="names"))
    every = samples["train"] + samples["val"] + samples["test"]
    assert 85_000 < len(every) < 95_000
    assert len(set(every)) == len(every)
    assert all(s == s.lower() and s.isalpha() for s in every[:1000])


def test_vocabulary_comes_from_training_only():
    ds = text_dataset("t", {"train": ["ab"], "test": ["az"]}, kind="lines", block_size=8)
    assert ds.meta["vocab"] == ["a", "b"]
    assert UNK in ds.test["x"][0].tolist()


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "missing.txt"), "does not exist"),
    (lambda p: str(p), "is a folder"),
    (lambda p: (p / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1")) and str(p / "latin1.txt"), "not UTF-8"),
    (lambda p: (p / "empty.txt").write_text("\n\n") and str(p / "empty.txt"), "no training samples"),
])
def test_bad_files_give_one_clear_error(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        load_dataset(DataConfig(source="lines:" + make(tmp_path)))


def test_padding_never_counts_as_a_target():
    ds = text_dataset("t", {"train": ["a", "abcdef"]}, kind="lines", block_size=16)
    assert int((ds.train["x"][:, 1:] != PAD).sum()) == (1 + 1) + (6 + 1)
    assert torch.equal(ds.train["x"][0, 3:], torch.zeros(5, dtype=torch.int64))  # width 6 + 2
