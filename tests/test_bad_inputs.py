"""Every bad input gets one line that names the thing and the fix, exit code 2, no traceback."""
import gzip
import struct

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigc.cli import main
from aigc.config import DataConfig, load_config
from aigc.data import load_dataset
from aigc.data.images import read_idx
from aigc.errors import ConfigError, DataError, UserError

from .bad_inputs import make_corpus

QUICK = ["--steps", "2", "--set", "train.progress=false", "--set", "train.threads=1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("bad"))


def one_line_error(capsys, argv, tmp_path) -> str:
    code = main([*argv, "--out", str(tmp_path / "run")] if argv[0] == "train" else argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


CASES = {
    # name: (argv given the corpus path C, words the line must contain)
    "corrupt images": (lambda c: ["train", "digits-gan", "--set", f"data.source=folder:{c}/corrupt-images"],
                       ["3 of 3", "unreadable", "a.png"]),
    "zero-byte images": (lambda c: ["train", "digits-gan", "--set", f"data.source=folder:{c}/zero-byte-images"],
                         ["unreadable"]),
    "empty folder": (lambda c: ["train", "digits-gan", "--set", f"data.source=folder:{c}/empty-folder"],
                     ["no images", "empty-folder"]),
    "mixed sizes": (lambda c: ["train", "digits-gan", "--set", f"data.source=folder:{c}/mixed-sizes"],
                    ["data.image_size"]),
    "truncated idx": (lambda c: ["train", "digits-gan", "--set", "data.source=mnist",
                                 "--set", f"data.root={c}/idx-truncated"], ["truncated", "train-images"]),
    "wrong idx magic": (lambda c: ["train", "digits-gan", "--set", "data.source=mnist",
                                   "--set", f"data.root={c}/idx-bad-magic"], ["magic", "train-images"]),
    "label count": (lambda c: ["train", "digits-gan", "--set", "data.source=mnist",
                               "--set", f"data.root={c}/idx-count-mismatch"], ["40 images", "39 labels"]),
    "bad gzip": (lambda c: ["train", "digits-gan", "--set", "data.source=mnist",
                            "--set", f"data.root={c}/idx-bad-gzip"], ["cannot read", "train-images"]),
    "corrupt gzip": (lambda c: ["train", "digits-gan", "--set", "data.source=mnist",
                                "--set", f"data.root={c}/idx-corrupt-gzip"], ["cannot read", "train-images"]),
    "npy not npz": (lambda c: ["train", "digits-gan", "--set", f"data.source=npz:{c}/one-array.npy"],
                    ["one-array.npy", "one array"]),
    "unknown key": (lambda c: ["train", f"{c}/unknown-key.yaml"], ["train.stepz", "train.steps"]),
    "wrong type": (lambda c: ["train", f"{c}/wrong-type.yaml"], ["train.batch_size", "whole number"]),
    "negative steps": (lambda c: ["train", f"{c}/negative-steps.yaml"], ["train.steps", "positive"]),
    "unknown model": (lambda c: ["train", f"{c}/unknown-model.yaml"], ["unknown model 'stylegan9'"]),
    "unknown dataset": (lambda c: ["train", f"{c}/unknown-dataset.yaml"], ["unknown data source 'imagenet'"]),
    "not yaml": (lambda c: ["train", f"{c}/not-yaml.yaml"], ["not valid YAML", "line"]),
    "not utf-8 yaml": (lambda c: ["train", f"{c}/latin1.yaml"], ["not UTF-8"]),
    "unknown recipe": (lambda c: ["train", "digit-gan"], ["unknown recipe 'digit-gan'", "digits-gan"]),
    "pickle model": (lambda c: ["sample", f"{c}/model.pt"], ["pickle", "never unpickles"]),
    "empty text": (lambda c: ["train", "names-rnn", "--set", f"data.source=lines:{c}/empty.txt"],
                   ["empty.txt", "no training samples"]),
    "only newlines": (lambda c: ["train", "names-rnn", "--set", f"data.source=lines:{c}/newlines.txt"],
                      ["newlines.txt", "no training samples"]),
    "non-UTF-8 text": (lambda c: ["train", "names-rnn", "--set", f"data.source=text:{c}/latin1.txt"],
                       ["latin1.txt", "not UTF-8", "UTF-8"]),
    "missing text": (lambda c: ["train", "names-rnn", "--set", f"data.source=lines:{c}/nope.txt"],
                     ["nope.txt", "does not exist"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, corpus, capsys, tmp_path):
    build, words = CASES[name]
    line = one_line_error(capsys, build(str(corpus)), tmp_path)
    for w in words:
        assert w in line, line


def test_a_few_bad_files_are_skipped_listed_and_counted(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "digits-gan", "--set", f"data.source=folder:{corpus}/odd-modes",
                 "--set", "data.test_fraction=0", *QUICK, "--out", str(run)]) == 0
    import json

    meta = json.loads((run / "data.json").read_text())
    assert meta["shape"] == [3, 8, 8] and meta["n_train"] == 21
    assert len(meta["skipped"]) == 1 and "broken.png" in meta["skipped"][0]
    assert "| skipped files | 1 |" in (run / "report.md").read_text()


# ---------------------------------------------------------------- property-based

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["train.steps", "train.lr", "train.batch_size", "train.betas", "model.z_dim",
                            "model.loss", "data.channels", "data.source", "seed", "train.nosuch", "x.y.z"]),
       value=st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=12),
                       st.booleans(), st.none(), st.lists(st.integers(), max_size=3)))
def test_overrides_either_apply_or_raise_a_config_error(key, value):
    try:
        cfg = load_config("digits-gan", [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"])
    except UserError:
        return
    assert cfg.train.steps > 0 and cfg.train.lr > 0 and cfg.train.batch_size > 0


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_yaml_text_either_loads_or_raises_a_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("y") / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(str(path))
    except ConfigError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.booleans())
def test_idx_reader_accepts_or_refuses_any_bytes(tmp_path_factory, blob, gz):
    path = tmp_path_factory.mktemp("idx") / "f"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    try:
        arr = read_idx(path, 1)
    except DataError:
        return
    assert arr.ndim == 1 and blob[:4] == b"\x00\x00\x08\x01"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=3), st.integers(-3, 3))
def test_idx_reader_round_trips_and_checks_length(tmp_path_factory, dims, extra):
    arr = np.arange(int(np.prod(dims)), dtype=np.int64).astype(np.uint8).reshape(dims)
    blob = struct.pack(">BBBB", 0, 0, 8, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + arr.tobytes()
    blob = blob + b"\0" * extra if extra >= 0 else blob[:extra]
    path = tmp_path_factory.mktemp("idx") / "f"
    path.write_bytes(blob)
    if extra == 0:
        assert np.array_equal(read_idx(path, len(dims)), arr)
    else:
        with pytest.raises(DataError):
            read_idx(path, len(dims))


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["lines", "text"]))
def test_text_loader_accepts_or_refuses_any_bytes(tmp_path_factory, blob, kind):
    """Any file either loads (every line/char encodable, round-tripping) or gives one DataError."""
    from aigc.data.text import load_text_samples

    path = tmp_path_factory.mktemp("txt") / "f.txt"
    path.write_bytes(blob)
    cfg = DataConfig(source=f"{kind}:{path}", block_size=8)
    try:
        ds = load_dataset(cfg)
    except DataError:
        return
    text = blob.decode("utf-8")
    splits = load_text_samples(cfg)
    assert ds.modality == "text" and len(ds) == len(splits["train"]) > 0
    if kind == "lines":
        assert all(s and s in text for s in splits["train"])


def test_unknown_dataset_in_python_api():
    with pytest.raises(ConfigError, match="unknown data source"):
        load_dataset(DataConfig(source="imagenet"))
