"""evaluation/counterfactual.py: slerp, chunk selection by t, ProbMask."""
import math

import torch

from diffops.evaluation.counterfactual import ProbMask, chunk_mask, slerp, train_probmask_classifier
from diffops.evaluation.probe import average_precision
from diffops.methods.diti import DiTi
from diffops.methods.pdae import PDAE

from tests.helpers.diti import diti_config


def test_slerp_endpoints_and_norm():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert math.isclose(float(mid.norm()), 3.0, rel_tol=1e-6) and math.isclose(float(mid[0, 0]), float(mid[0, 1]))


def test_chunk_mask_selects_chunks_by_their_first_timestep():
    m = DiTi(diti_config(**{"diti.latent_dim": 8, "diti.k": 4}))         # chunk starts 0, 250, 500, 750
    assert chunk_mask(m, 0, 500).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert chunk_mask(m, 600, 1000).tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert chunk_mask(m, 1, 250).sum() == 0
    assert chunk_mask(PDAE(diti_config()), 0, 1000).tolist() == [1.0] * 8


def test_probmask_schedule_and_projection():
    mask = ProbMask(dims=20, keep=4, max_iters=100)
    assert mask.pr == 1.0 and mask.temp == 1.0
    mask.adjust(25)                                    # between 10 % and 40 %: cubic decay
    assert 0.2 < mask.pr < 1.0
    mask.adjust(40)
    assert mask.pr == 0.2 and math.isclose(mask.temp, 1 / (0.97 * 0.6 + 0.03))
    with torch.no_grad():
        mask.scores.copy_(torch.linspace(0.1, 1.0, 20))
    mask.constrain()
    assert abs(float(mask.scores.detach().sum()) - 4.0) < 0.05 and float(mask.scores.detach().min()) >= 0
    mask.fix()
    assert mask.subnet.sum() == 4 and mask.subnet[-4:].tolist() == [1, 1, 1, 1]


def test_masked_classifier_finds_the_informative_dimension():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(512, generator=g) < 0.4).long()
    z = torch.randn(512, 16, generator=g)
    z[:, 11] += 3 * y
    classifier, mask = train_probmask_classifier(z, y, keep=2, epochs=20, lr=1e-2, seed=0)
    assert mask.subnet[11] == 1 and mask.subnet.sum() == 2
    with torch.no_grad():
        assert average_precision(y.numpy(), classifier(mask(z))[:, 0].numpy()) > 0.9
