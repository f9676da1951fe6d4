"""TIW-DSM losses against hand-computed values with an analytic discriminator (logit linear in x)."""
import pytest
import torch

from diffops.config import ConfigError
from diffops.diffusion import vp
from diffops.diffusion.edm import edm_loss
from diffops.artifacts.discriminator import load_discriminator
from diffops.methods.tiw_dsm import TIW_METHODS
from tests.helpers.tiw import LinearLogit, Shrink, tiw_config, write_discriminator

pytestmark = pytest.mark.usefixtures("one_thread")


def TIWDSM(cfg, mode, discriminator=None):
    """The method of one mode, its discriminator loaded from a folder as the stages load it."""
    loaded = load_discriminator(discriminator, cfg.tiw.discriminator_step) if discriminator is not None else None
    return TIW_METHODS[mode](cfg, discriminator=loaded)


@pytest.fixture(scope="module")
def disc_dir(tmp_path_factory):
    return write_discriminator(tmp_path_factory.mktemp("tiw") / "disc")


def batch(n=6):
    g = torch.Generator().manual_seed(3)
    return {"image": torch.rand(n, 3, 8, 8, generator=g) * 2 - 1,
            "group": torch.tensor([1, 0, 0, 1, 0, 0][:n], dtype=torch.uint8)}


def draws(y, seed, cfg):
    """The EDM draws the method makes: sigma, lambda(sigma), x = y + n."""
    g = torch.Generator().manual_seed(seed)
    sigma = (torch.randn([y.shape[0], 1, 1, 1], generator=g) * cfg.edm.P_std + cfg.edm.P_mean).exp()
    n = torch.randn(y.shape, generator=g) * sigma
    lam = (sigma**2 + 0.25) / (sigma * 0.5) ** 2
    return sigma, lam, y + n


def run(mode, disc_dir, seed=7, **overrides):
    cfg = tiw_config(**overrides)
    method = TIWDSM(cfg, mode=mode, discriminator=disc_dir)
    return method.loss(Shrink(), {"discriminator": LinearLogit()}, batch(), torch.Generator().manual_seed(seed)), cfg


def test_dsm_obs_is_the_edm_loss(disc_dir):
    loss, cfg = run("dsm_obs", None)
    ref = edm_loss(Shrink(), batch()["image"], torch.Generator().manual_seed(7), cfg.edm.P_mean, cfg.edm.P_std)
    assert torch.allclose(loss, ref)


def test_dsm_ref_averages_over_reference_rows():
    loss, cfg = run("dsm_ref", None)
    ref = edm_loss(Shrink(), batch()["image"], torch.Generator().manual_seed(7), cfg.edm.P_mean, cfg.edm.P_std)
    is_ref = batch()["group"] == 1
    assert torch.allclose(loss.mean(), ref[is_ref].mean()) and (loss[~is_ref] == 0).all()


def test_tiw_dsm_paper_form(disc_dir):
    loss, cfg = run("tiw_dsm", disc_dir)
    y = batch()["image"]
    sigma, lam, x = draws(y, 7, cfg)
    alpha = vp.alpha_from_sigma(sigma)
    disc = LinearLogit()
    w = disc(alpha * x, vp.tau_from_sigma(sigma.flatten())).exp()                 # w = d / (1 - d) = exp(logit)
    target = y + sigma**2 * alpha * disc.a                                         # y + sigma^2 grad_x log w
    expected = w * (lam * (Shrink()(x, sigma) - target) ** 2).flatten(1).mean(1)
    assert torch.allclose(loss, expected, rtol=1e-5)
    assert not torch.allclose(w, torch.ones_like(w))                               # the check has teeth


def test_tiw_compat_released_form(disc_dir):
    loss, cfg = run("tiw_compat", disc_dir)
    y = batch()["image"]
    sigma, lam, x = draws(y, 7, cfg)
    alpha = vp.alpha_from_sigma(sigma)
    disc = LinearLogit()
    d = disc(alpha * x, vp.tau_from_sigma(sigma.flatten())).sigmoid()
    grad_d = (d * (1 - d)).reshape(-1, 1, 1, 1) * alpha * disc.a                   # grad_x D, not grad log w
    target = y - sigma**2 * grad_d                                                 # opposite sign
    expected = (2 * d).mean() * (lam * (Shrink()(x, sigma) - target) ** 2).flatten(1).mean(1)
    assert torch.allclose(loss, expected, rtol=1e-5)


def test_iw_dsm_uses_the_clean_discriminator(disc_dir):
    loss, cfg = run("iw_dsm", disc_dir)
    y = batch()["image"]
    sigma, lam, x = draws(y, 7, cfg)
    tau0 = torch.full([6], vp.TAU_EPS)
    w = LinearLogit()(vp.alpha_from_sigma(vp.sigma_from_tau(tau0.double()).float()).reshape(-1, 1, 1, 1) * y, tau0).exp()
    expected = w * (lam * (Shrink()(x, sigma) - y) ** 2).flatten(1).mean(1)
    assert torch.allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("overrides", [{"tiw.alpha": 0.0}, {"tiw.tau_min": 0.99},
                                       {"tiw.use_weight": False, "tiw.use_correction": False}])
def test_knobs_that_switch_weighting_off_give_dsm_obs(disc_dir, overrides):
    weighted, _ = run("tiw_dsm", disc_dir, **overrides)
    plain, _ = run("dsm_obs", None)
    assert torch.allclose(weighted, plain)


def test_weight_clip_and_strength(disc_dir):
    full, cfg = run("tiw_dsm", disc_dir, **{"tiw.use_correction": False})
    plain, _ = run("dsm_obs", None)
    w = full / plain
    clipped, _ = run("tiw_dsm", disc_dir, **{"tiw.use_correction": False, "tiw.weight_max": 1.0, "tiw.weight_min": 0.9})
    assert torch.allclose(clipped / plain, w.clamp(0.9, 1.0), rtol=1e-5)
    half, _ = run("tiw_dsm", disc_dir, **{"tiw.use_correction": False, "tiw.alpha": 0.5})
    assert torch.allclose(half / plain, w.sqrt(), rtol=1e-5)                       # w^alpha


def test_fingerprint_names_the_discriminator_and_knobs(tmp_path, disc_dir):
    other = write_discriminator(tmp_path / "other", seed=1)
    fp = lambda mode, d, **o: TIWDSM(tiw_config(**o), mode=mode, discriminator=d).fingerprint  # noqa: E731
    assert fp("tiw_dsm", disc_dir) != fp("tiw_dsm", other)
    assert fp("tiw_dsm", disc_dir) != fp("tiw_dsm", disc_dir, **{"tiw.alpha": 2.0})
    assert fp("tiw_dsm", disc_dir) != fp("tiw_dsm", disc_dir, **{"tiw.discriminator_step": 4})
    assert fp("dsm_obs", disc_dir) == fp("dsm_obs", other) == fp("dsm_obs", None, **{"tiw.alpha": 2.0})


def test_errors_name_what_to_change(disc_dir):
    with pytest.raises(ValueError, match="--discriminator"):
        TIWDSM(tiw_config(), mode="tiw_dsm")
    with pytest.raises(ConfigError, match="tiw.alpha"):
        TIWDSM(tiw_config(**{"tiw.alpha": 0.5}), mode="tiw_compat", discriminator=disc_dir)
    with pytest.raises(ConfigError, match="tiw.discriminator_step.*has no checkpoint at step 6"):
        TIWDSM(tiw_config(**{"discriminator.steps": 6, "tiw.discriminator_step": 6}), mode="iw_dsm",
               discriminator=disc_dir)


@pytest.mark.parametrize("overrides, key", [
    ({"tiw.discriminator_step": 3}, "tiw.discriminator_step"),
    ({"tiw.discriminator_step": 8}, "tiw.discriminator_step"),
    ({"bias_split.attributes": ["Male", "Smiling"]}, r"bias_split.attributes\[1\]"),
    ({"bias_split.attributes": ["Male", "Male"]}, r"bias_split.attributes\[1\]"),
    ({"tiw.weight_min": 2.0, "tiw.weight_max": 1.0}, "tiw.weight_min"),
    ({"tiw.tau_min": 0.5, "tiw.tau_max": 0.5}, "tiw.tau_min"),
    ({"bias_split.factor": 0}, "bias_split.factor"),
    ({"discriminator.time_dim": 7}, "discriminator.time_dim"),
    ({"bias_split.downsample": 8}, "bias_split.downsample"),      # 8 px / 8 = 1 px cannot be halved by the UNet
])
def test_params_are_validated(overrides, key):
    with pytest.raises(ConfigError, match=key):
        tiw_config(**overrides)
