"""evaluation/asyrp.py: the edit's change rates with their standard errors, and the LPIPS interval rules."""
import numpy as np
import pytest

from diffops.evaluation.asyrp import binomial_se, edit_metrics, lpips_intervals


def test_change_rates_and_standard_errors():
    n = 10
    recon = np.zeros((n, 3))                                # target (column 0) and two other attributes, all off
    edited = recon.copy()
    edited[:6, 0] = 1                                       # 6 of 10 flip the target
    edited[:2, 1] = 1                                       # 2 of 10 flip attribute 1, none attribute 2
    random = recon.copy()
    random[:1, 0] = 1
    probs = {"original": recon, "recon": recon, "edited": edited, "random": random}
    rng = np.random.default_rng(0)
    feats = {k: rng.normal(size=(n, 2)) for k in probs}
    m = edit_metrics(probs, feats, target=0)
    assert m["num_images"] == n and m["change_rate"] == 0.6 and m["change_rate_random"] == 0.1
    assert m["change_rate_se"] == pytest.approx(np.sqrt(0.6 * 0.4 / n))
    assert m["change_rate_minus_random"] == pytest.approx(0.5)
    assert m["other_attr_change"] == pytest.approx(0.1)        # (0.2 + 0) / 2
    per_image = np.r_[[0.5, 0.5], np.zeros(8)]
    assert m["other_attr_change_se"] == pytest.approx(per_image.std() / np.sqrt(n))
    assert m["rate_edited"] == 0.6 and m["fd_attrnet"] > 0
    assert binomial_se(1.0, 5) == 0


def test_lpips_rules_pick_the_first_step_over_each_threshold():
    ts = [20, 40, 60, 80]
    assert lpips_intervals(ts, [0.1, 0.2, 0.35, 0.5], [0.5, 1.3, 1.4, 1.5], 0.33, 1.2) == (60, 40)
    with pytest.raises(ValueError, match="asyrp.lpips_edit_threshold"):
        lpips_intervals(ts, [0.1] * 4, [2.0] * 4, 0.33, 1.2)
