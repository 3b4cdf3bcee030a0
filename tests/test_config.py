"""Configs: recipes load, overrides apply, and mistakes name the key and the fix."""
import pytest
import yaml

from aigc.config import Config, load_config, recipe_names, set_override
from aigc.errors import ConfigError

from .conftest import tiny_gan


def test_every_recipe_loads_and_checks():
    names = recipe_names()
    assert {"digits-gan", "fashion-gan", "fashion-dcgan", "fashion-wgan-gp", "fashion-cgan"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name


def test_fashion_gan_is_the_documents_example():
    cfg = load_config("fashion-gan")
    assert cfg.model["z_dim"] == 100
    assert cfg.model["g_hidden"] == [128, 256, 512] and cfg.model["d_hidden"] == [512, 256, 128]
    assert cfg.model["loss"] == "bce" and cfg.train.lr == 1e-4


def test_overrides_parse_yaml_values():
    cfg = load_config("digits-gan", ["train.steps=7", "train.lr=1e-3", "model.g_hidden=[16, 16]", "seed=3"])
    assert cfg.train.steps == 7 and cfg.train.lr == pytest.approx(1e-3) and cfg.seed == 3
    assert cfg.model["g_hidden"] == [16, 16]


def test_yaml_round_trip():
    cfg = load_config(tiny_gan())
    again = load_config(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg and isinstance(again, Config)


@pytest.mark.parametrize("override, words", [
    ("train.stpes=5", ["train.stpes", "train.steps"]),
    ("trian.steps=5", ["trian", "train"]),
    ("model.z_dm=5", ["model.z_dm", "z_dim"]),
    ("train.steps=-3", ["train.steps", "positive"]),
    ("train.steps=many", ["train.steps", "whole number"]),
    ("train.lr=0", ["train.lr", "positive"]),
    ("model.loss=wgan", ["GAN loss", "wgan-gp"]),
    ("model.name=dcgen", ["model", "dcgan"]),
    ("data.channels=2", ["data.channels", "1", "3"]),
    ("train.betas=[0.5]", ["train.betas"]),
    ("train.progress=maybe", ["train.progress", "true or false"]),
])
def test_mistakes_name_the_key_and_the_fix(override, words):
    with pytest.raises(ConfigError) as e:
        load_config("digits-gan", [override])
    for w in words:
        assert w in str(e.value)


def test_unknown_recipe_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'fashion-gan'"):
        load_config("fashon-gan")


def test_override_without_equals_is_refused():
    with pytest.raises(ConfigError, match="no '='"):
        set_override({}, "train.steps")


def test_yaml_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config(str(scalar))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))
