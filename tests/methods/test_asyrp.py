"""methods/asyrp.py: the frozen DPM's noise with and without h + Delta h, edit scaling and the losses; the
local CLIP / LPIPS loaders' error paths (artifacts/perceptual.py)."""
import math

import pytest
import torch
from torch.nn import functional as F

from diffops.artifacts.perceptual import clip_weights_file, load_clip, load_lpips
from diffops.diffusion.ddpm import DDPMSchedule
from diffops.diffusion.edm import EDMPrecond
from diffops.methods.asyrp import (asyrp_eps, asyrp_loss, attribute_direction_loss, clip_direction_loss,
                                   clip_directional_cosine, combined_delta, edit_coefficients)
from diffops.nets.delta_h import delta_block_for
from diffops.nets.unet import build_unet

S = DDPMSchedule()
pytestmark = pytest.mark.usefixtures("one_thread")


def test_eps_pair_is_the_ddpm_view_of_the_edm_model_and_delta_h_edits_only_eps_tilde():
    torch.manual_seed(0)
    D = EDMPrecond(build_unet(16, [8, 16], [False, True], norm_num_groups=4)).eval()
    x_t, t = torch.randn(3, 3, 16, 16), torch.tensor([0, 500, 999])
    with torch.no_grad():
        eps, eps_edit, dh = asyrp_eps(D, x_t, t, S, None)
        torch.testing.assert_close(eps, S.eps(D, x_t, t).to(torch.float32), rtol=1e-4, atol=1e-4)
        assert eps_edit is eps and dh is None
        net = delta_block_for(D.net)
        eps2, eps_edit2, dh2 = asyrp_eps(D, x_t, t, S, net)
        assert torch.equal(eps2, eps) and dh2.shape == (3, 16, 8, 8) and not torch.allclose(eps_edit2, eps)
        _, eps_zero, _ = asyrp_eps(D, x_t, t, S, lambda h, emb: torch.zeros_like(h))
        assert torch.equal(eps_zero, eps)


def test_several_edits_combine_with_one_over_sqrt_n_and_the_step_ratio():
    assert edit_coefficients(1, 1.0, 50, 100) == [0.5]
    c = edit_coefficients(2, 2.0, 40, 40)
    assert c == pytest.approx([2 / math.sqrt(2)] * 2)
    f1, f2 = (lambda h, e: h), (lambda h, e: 2 * h)
    h = torch.ones(1, 2, 2, 2)
    torch.testing.assert_close(combined_delta([f1, f2], [0.5, 0.25])(h, None), h)     # each on the original h


def test_attribute_loss_is_the_log_likelihood_of_the_attribute():
    logit = torch.tensor([0.0, 2.0, -3.0], requires_grad=True)
    loss = attribute_direction_loss(logit)
    torch.testing.assert_close(loss, -torch.log(torch.sigmoid(logit)).mean())
    loss.backward()
    assert bool((logit.grad < 0).all())                       # descending it raises every logit


def test_clip_directional_loss_with_a_stand_in_encoder():
    # A linear "image encoder": the image direction is the encoder's image of P_edit - x_ref.
    W = torch.randn(4, 3 * 2 * 2, generator=torch.Generator().manual_seed(0))
    encode = lambda x: F.normalize(x.flatten(1) @ W.T, dim=-1)                           # noqa: E731
    x_ref = torch.zeros(2, 3, 2, 2) + 0.1
    P_edit = x_ref + torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    direction = encode(P_edit[:1]) - encode(x_ref[:1])
    cos = clip_directional_cosine(encode, x_ref[:1], P_edit[:1], direction[0])
    torch.testing.assert_close(cos, torch.ones(1))
    assert float(clip_direction_loss(cos)) == pytest.approx(0.0, abs=1e-6)            # aligned: -log(2/2) = 0
    assert float(clip_direction_loss(torch.zeros(3))) == pytest.approx(math.log(2))  # orthogonal: L_dir = 1
    assert float(clip_direction_loss(-cos)) == math.inf                                # opposite: L_dir = 2


def test_loss_is_lambda_dir_direction_plus_lambda_rec_cos_l1():
    P_edit, P_orig = torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    loss, l1 = asyrp_loss(torch.tensor(0.5), P_edit, P_orig, lambda_dir=2.0, lambda_rec=3.0, rec_cosine=0.8)
    assert float(l1) == 1.0 and float(loss) == pytest.approx(2.0 * 0.5 + 3.0 * 0.8 * 1.0)


def test_clip_and_lpips_come_from_local_paths_only(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"asyrp.clip_model: {tmp_path / 'clip'}: no such folder"):
        load_clip(tmp_path / "clip", "ViT-B-16")
    (tmp_path / "clip").mkdir()
    with pytest.raises(FileNotFoundError, match="holds none of open_clip_pytorch_model.bin"):
        clip_weights_file(tmp_path / "clip")
    (tmp_path / "clip" / "open_clip_pytorch_model.bin").write_bytes(b"")
    try:
        import open_clip  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ValueError, match="needs the open_clip package"):
            load_clip(tmp_path / "clip", "ViT-B-16")
    with pytest.raises(FileNotFoundError, match=f"asyrp.lpips_weights: {tmp_path / 'alex.pth'}: no such file"):
        load_lpips(tmp_path / "alex.pth")
