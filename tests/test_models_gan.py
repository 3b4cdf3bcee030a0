"""GAN family: shapes of every net, each loss, the document's architecture, labels by name."""
import pytest
import torch

from aigc.config import model_config
from aigc.errors import ConfigError
from aigc.models.gan import GAN_LOSSES, gradient_penalty
from aigc.models.gan_nets import dcgan_plan
from aigc.run import build_model

META = {"shape": [1, 28, 28], "num_classes": 10,
        "class_names": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                        "Bag", "Ankle boot"]}


def batch(n=8, shape=(1, 28, 28)):
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g), "y": torch.arange(n) % 10}


def test_document_mlp_gan_architecture():
    m = build_model({"name": "gan-mlp"}, META)
    linears = [m_ for m_ in m.G.net if isinstance(m_, torch.nn.Linear)]
    assert [(x.in_features, x.out_features) for x in linears] == [(100, 128), (128, 256), (256, 512), (512, 784)]
    assert isinstance(m.G.net[-1], torch.nn.Tanh)
    d = [x for x in m.D.features if isinstance(x, torch.nn.Linear)]
    assert [(x.in_features, x.out_features) for x in d] == [(784, 512), (512, 256), (256, 128)]
    assert m.D.head.linear.out_features == 1
    out = m.G(torch.randn(4, 100))
    assert out.shape == (4, 1, 28, 28)  # 784 reshaped to 28x28, not the document's 512


@pytest.mark.parametrize("size, plan", [(28, (7, 2)), (32, (4, 3)), (64, (4, 4)), (16, (4, 2)), (8, (4, 1))])
def test_dcgan_sizes(size, plan):
    assert dcgan_plan(size) == plan
    m = build_model({"name": "dcgan", "channels": 8, "z_dim": 16}, {"shape": [3, size, size]})
    x = m.sample(2)
    assert x.shape == (2, 3, size, size) and 0 <= x.min() and x.max() <= 1
    assert m.D(x * 2 - 1).shape == (2,)


def test_dcgan_refuses_odd_sizes():
    with pytest.raises(ConfigError, match="data.image_size"):
        build_model({"name": "dcgan"}, {"shape": [1, 27, 27]})


@pytest.mark.parametrize("loss", ["bce", "wgan-gp", "hinge"])
@pytest.mark.parametrize("name", ["gan-mlp", "dcgan"])
def test_each_loss_trains_and_changes_both_nets(name, loss):
    torch.manual_seed(0)
    m = build_model({"name": name, "loss": loss, "z_dim": 16, **({"channels": 8} if name == "dcgan" else {})}, META)
    from aigc.config import TrainConfig

    opts = m.configure_optimizers(TrainConfig())
    g0 = [p.clone() for p in m.G.parameters()]
    d0 = [p.clone() for p in m.D.parameters()]
    logs = m.training_step(batch(), opts, 0)
    assert {"d_loss", "g_loss"} <= set(logs) and all(torch.isfinite(v) for v in logs.values())
    assert ("gp" in logs) == (loss == "wgan-gp")
    assert any(not torch.equal(a, b) for a, b in zip(g0, m.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, m.D.parameters(), strict=True))


def test_n_critic_updates_g_every_nth_step():
    from aigc.config import TrainConfig

    m = build_model({"name": "gan-mlp", "loss": "wgan-gp", "n_critic": 3, "z_dim": 8}, META)
    opts = m.configure_optimizers(TrainConfig())
    updated = ["g_loss" in m.training_step(batch(), opts, s) for s in range(6)]
    assert updated == [True, False, False, True, False, False]


def test_loss_formulas():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-1.0, 0.3])
    bce = GAN_LOSSES.get("bce")()
    ref = torch.nn.functional.binary_cross_entropy_with_logits
    assert torch.allclose(bce.d_loss(real, fake), ref(real, torch.ones(2)) + ref(fake, torch.zeros(2)))
    assert torch.allclose(bce.g_loss(fake), ref(fake, torch.ones(2)))
    w = GAN_LOSSES.get("wgan-gp")()
    assert torch.allclose(w.d_loss(real, fake), -(real.mean() - fake.mean()))  # the document's L_D
    assert torch.allclose(w.g_loss(fake), -fake.mean())                           # the document's L_G
    h = GAN_LOSSES.get("hinge")()
    assert torch.allclose(h.d_loss(real, fake), torch.tensor((0 + 0.5 + 0 + 1.3) / 2))


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    w = torch.zeros(1, 4)
    w[0, 0] = 1.0  # D(x) = x_0 has gradient norm exactly 1 everywhere
    gp = gradient_penalty(lambda x, y: x.flatten(1) @ w.T, torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2), None)
    assert gp.item() == pytest.approx(0.0, abs=1e-10)
    gp2 = gradient_penalty(lambda x, y: 3 * x.flatten(1) @ w.T, torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2), None)
    assert gp2.item() == pytest.approx(4.0)


def test_conditional_sampling_by_label_name():
    m = build_model({"name": "dcgan", "conditional": True, "channels": 8}, META)
    assert m.resolve_labels("ankle boot", 3).tolist() == [9, 9, 9]
    assert m.resolve_labels(["Bag", "t-shirt/top"], 4).tolist() == [8, 0, 8, 0]
    assert m.resolve_labels(None, 12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert m.sample(3, labels="Sneaker").shape == (3, 1, 28, 28)
    with pytest.raises(ConfigError, match="did you mean 'Sandal'"):
        m.resolve_labels("sandle", 1)
    with pytest.raises(ConfigError, match="out of range"):
        m.resolve_labels(12, 1)


def test_unconditional_model_refuses_labels():
    m = build_model({"name": "gan-mlp"}, META)
    with pytest.raises(ConfigError, match="not trained with labels"):
        m.sample(2, labels="Bag")


def test_conditional_needs_labelled_data():
    with pytest.raises(ConfigError, match="no labels"):
        build_model({"name": "gan-mlp", "conditional": True}, {"shape": [1, 8, 8]})


def test_sampling_is_seeded_and_leaves_the_global_rng_alone():
    m = build_model({"name": "gan-mlp", "z_dim": 8}, META)
    state = torch.get_rng_state()
    a = m.sample(4, generator=torch.Generator().manual_seed(1))
    b = m.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(state, torch.get_rng_state())


def test_ema_follows_the_generator():
    m = build_model({"name": "gan-mlp", "z_dim": 8, "ema": 0.9}, META)
    from aigc.config import TrainConfig

    opts = m.configure_optimizers(TrainConfig(lr=1e-2))
    for s in range(30):
        m.training_step(batch(), opts, s)
    g = torch.cat([p.flatten() for p in m.G.parameters()])
    e = torch.cat([p.flatten() for p in m.g_ema.shadow.parameters()])
    assert not torch.equal(g, e) and (g - e).abs().max() < 0.5
    assert model_config({"name": "gan-mlp", "ema": 0}).ema == 0


def test_minibatch_std_sees_a_collapsed_batch_and_never_mixes_groups():
    from aigc.models.gan_nets import MinibatchStdDev

    layer = MinibatchStdDev(4)
    varied, same = torch.randn(8, 3, 4, 4), torch.randn(1, 3, 4, 4).expand(8, 3, 4, 4)
    assert layer(varied)[:, 3].mean() > 0.5 and layer(same)[:, 3].abs().max() < 1e-3
    # reals then fakes in one batch: a group never spans the two halves, so a collapsed half shows
    mixed = layer(torch.cat([varied[:4], same[:4]]))[:, 3]
    assert mixed[:4].min() > 0.5 and mixed[4:].max() < 1e-3
    assert layer(torch.randn(6, 3, 4, 4)).shape == (6, 4, 4, 4)  # 6 is not a multiple of 4: groups of 3


@pytest.mark.parametrize("extra", [{"d_norm": "batch"}, {"mbstd": 4}, {"d_norm": "batch", "mbstd": 2}])
def test_a_batch_aware_discriminator_sees_real_and_fake_apart(extra):
    """With batch norm or minibatch std in D, D(real) must not depend on the fakes beside it."""
    torch.manual_seed(0)
    m = build_model({"name": "dcgan", "channels": 8, "z_dim": 16, **extra}, META)
    assert m.D.batch_aware
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in m.D.modules()) == ("d_norm" in extra)
    from aigc.config import TrainConfig

    seen = []
    hook = m.D.register_forward_hook(lambda mod, inp, out: seen.append(len(inp[0])))
    opts = m.configure_optimizers(TrainConfig())
    d0 = [p.clone() for p in m.D.parameters()]
    logs = m.training_step(batch(), opts, 0)
    hook.remove()
    assert seen == [8, 8, 8]  # D(real), D(fake) for D's update, D(fake) for G's: never a joint batch of 16
    assert all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(d0, m.D.parameters(), strict=True))


@pytest.mark.parametrize("extra, words", [({"d_norm": "layer"}, "use none or batch"),
                                           ({"d_norm": "batch", "loss": "wgan-gp"}, "per sample"),
                                           ({"mbstd": -1}, "group size"), ({"mbstd": 1}, "group size"), ({"mbstd": 1000}, "group size")])
def test_discriminator_options_are_checked(extra, words):
    with pytest.raises(ConfigError, match=words):
        build_model({"name": "dcgan", **extra}, META)
