"""The Python API and the CLI agree on sample options, and a loaded model serves several threads."""
from __future__ import annotations

import threading

import pytest
import torch

import aigc
from aigc.cli import main
from aigc.config import load_config
from aigc.errors import ConfigError
from aigc.models import SampleOptions
from aigc.models.autoregressive import TextSampleOptions
from aigc.models.gan import GANSampleOptions
from aigc.train import train

FAST = ["--quiet", "--set", "train.threads=1", "--set", "train.sample_every=0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A conv GAN (batch norm: eval mode matters) and a dropout GRU, a few steps each."""
    root = tmp_path_factory.mktemp("runs")
    gan, text, lines = root / "dcgan", root / "gru", root / "names.txt"
    lines.write_text("\n".join(["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hugo"] * 8) + "\n")
    cfg = load_config({"name": "dcgan", "data": {"source": "digits", "image_size": 16},
                       "model": {"name": "dcgan", "channels": 8, "z_dim": 8, "conditional": True},
                       "train": {"steps": 20, "batch_size": 32, "threads": 1, "progress": False, "sample_every": 0}})
    train(cfg, gan, echo=lambda m: None)
    assert main(["train", "names-gru", "--steps", "20", "--out", str(text), "--set", f"data.source=lines:{lines}",
                 "--set", "model.dropout=0.5", "--set", "model.layers=2", *FAST]) == 0
    return gan, text


@pytest.mark.parametrize("flags, options", [
    (["--top-k", "3"], {"top_k": 3}),
    (["--temperature", "0.5"], {"temperature": 0.5}),
    (["--option", "ema=maybe"], {"ema": "maybe"}),
    (["--option", "lables=bag"], {"lables": "bag"}),
    (["--label", "eleven"], {"labels": ["eleven"]}),
])
def test_a_wrong_sample_option_is_the_same_line_through_the_cli_and_the_api(runs, capsys, flags, options):
    gan, _ = runs
    capsys.readouterr()
    assert main(["sample", str(gan), "--n", "2", *flags]) == 2
    cli = capsys.readouterr().err.strip()
    with pytest.raises(ConfigError) as e:
        aigc.load(gan).sample(2, **options)
    assert cli == f"error: {e.value}" and "\n" not in cli


def test_text_options_are_checked_once_for_both(runs, capsys):
    _, text = runs
    assert main(["sample", str(text), "--top-p", "1.5"]) == 2
    cli = capsys.readouterr().err.strip()
    with pytest.raises(ConfigError) as e:
        aigc.load(text).sample(2, top_p=1.5)
    assert cli == f"error: {e.value}" and "top-p is 1.5" in cli
    with pytest.raises(ConfigError, match="sample option 'labels' does not apply to gru runs"):
        aigc.load(text).sample(2, labels="x")
    with pytest.raises(ConfigError, match="sample option 'temprature' does not apply to gru runs .did you mean 'temperature'"):
        aigc.load(text).sample(2, temprature=0.5)


def test_each_family_declares_its_options_as_a_dataclass():
    assert issubclass(GANSampleOptions, SampleOptions) and issubclass(TextSampleOptions, SampleOptions)
    from dataclasses import fields

    assert [f.name for f in fields(GANSampleOptions)] == ["labels", "ema"]
    assert {"temperature", "top_k", "top_p", "prompt", "max_len"} <= {f.name for f in fields(TextSampleOptions)}


@pytest.mark.parametrize("which", [0, 1])
def test_two_threads_sampling_one_loaded_model_get_what_one_thread_gets(runs, which):
    run = runs[which]
    loaded = aigc.load(run)
    seeds = [1, 2, 3, 4, 5, 6]
    alone = {s: loaded.sample(12, seed=s) for s in seeds}
    got: dict[int, object] = {}
    start = threading.Barrier(2)

    def worker(mine: list[int]) -> None:
        start.wait()
        for s in mine:
            got[s] = loaded.sample(12, seed=s)

    threads = [threading.Thread(target=worker, args=(seeds[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in seeds:
        same = torch.equal(got[s], alone[s]) if which == 0 else got[s] == alone[s]
        assert same, f"seed {s} differs when sampled beside another thread"
    assert not loaded.model.training and not any(m.training for m in loaded.model.modules())


def test_dependencies_point_one_way(runs):
    """The registry imports nothing of aigc's; loading a run pulls in neither the loop nor the metrics;
    no module imports another's private names."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    src = Path(aigc.__file__).parent
    tree = ast.parse((src / "registry.py").read_text())
    ours = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.level or "aigc" in (n.module or ""))]
    assert not ours, "registry.py imports aigc modules"
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("aigc")):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__future__"]
                assert not private or node.module == "__future__", f"{path.name} imports {private}"
    run = runs[0]
    code = ("import sys, aigc; import aigc.api; aigc.load(sys.argv[1]).sample(2, seed=0); "
            "print(sorted(m for m in sys.modules if m in ('aigc.train.loop', 'aigc.metrics', 'aigc.cli')))")
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
