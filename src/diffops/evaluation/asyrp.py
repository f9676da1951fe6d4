"""What an Asyrp edit changed, measured by the attribute net (the featurenet stage) on the edited test images.

For N test images that lack the target attribute (ground truth), with the net's verdicts (p > 0.5) on the
reconstruction (the same sampler without Delta h), the edit, and the control edit (a random Delta h with the
learned one's norm at every step):

    change_rate          fraction of images whose target verdict differs between reconstruction and edit
    change_rate_random   the same for the control
    other_attr_change    the same per other attribute, averaged over the other attributes
    *_se                 binomial standard errors sqrt(p (1 - p) / N); for other_attr_change the standard error
                         over images of each image's fraction of flipped other attributes (for one attribute this
                         is the binomial one), since the attributes of one image are not independent
    change_rate_minus_random and its _se: the paired difference over images

fd_attrnet is the Fréchet distance between the attribute net's features of the edited and the original images
(N images each, so it carries N's bias; compare runs of the same N only).
"""
from __future__ import annotations

import numpy as np

from .frechet import fd_features


def binomial_se(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n)) if n else float("nan")


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """(mean, standard error with the 1/N variance, so that 0/1 values give the binomial SE)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std() / np.sqrt(len(values)))


def edit_metrics(probs: dict[str, np.ndarray], features: dict[str, np.ndarray], target: int) -> dict:
    """probs / features: {"original", "recon", "edited", "random"} -> (N, A) probabilities / (N, D) features."""
    verdict = {k: v > 0.5 for k, v in probs.items()}
    n, num_attributes = verdict["recon"].shape
    others = [a for a in range(num_attributes) if a != target]
    flips = {k: verdict[k] != verdict["recon"] for k in ("edited", "random")}       # (N, A) bool
    m = {"num_images": n}
    for name, key in (("change_rate", "edited"), ("change_rate_random", "random")):
        p = float(flips[key][:, target].mean())
        m[name], m[f"{name}_se"] = p, binomial_se(p, n)
    m["change_rate_minus_random"], m["change_rate_minus_random_se"] = mean_se(
        flips["edited"][:, target].astype(float) - flips["random"][:, target].astype(float))
    for name, key in (("other_attr_change", "edited"), ("other_attr_change_random", "random")):
        m[name], m[f"{name}_se"] = mean_se(flips[key][:, others].mean(1)) if others else (0.0, 0.0)
    for key in ("original", "recon", "edited", "random"):
        m[f"rate_{key}"] = float(verdict[key][:, target].mean())
    m["fd_attrnet"] = fd_features(features["edited"], features["original"])
    m["fd_attrnet_random"] = fd_features(features["random"], features["original"])
    m["fd_attrnet_recon"] = fd_features(features["recon"], features["original"])
    return m


def other_attribute_changes(probs: dict[str, np.ndarray], names: list[str], target: int) -> dict[str, float]:
    """Each other attribute's change rate under the edit (for the metrics file's table)."""
    flips = (probs["edited"] > 0.5) != (probs["recon"] > 0.5)
    return {name: float(flips[:, a].mean()) for a, name in enumerate(names) if a != target}


def lpips_intervals(ts: list[int], lpips_P: list[float], lpips_x: list[float], edit_threshold: float,
                    boost_threshold: float) -> tuple[int, int]:
    """The paper's rules (the reference's set_t_edit_t_addnoise) on the mean LPIPS distances of the inverted training
    images at increasing steps ts: t_edit = the smallest t with LPIPS(P_t, x0) >= edit_threshold (0.33 cos(prompts)),
    t_boost = the smallest t with LPIPS(x_t, x0) >= boost_threshold."""
    def first(values, threshold, key):
        t = next((t for t, v in zip(ts, values) if v >= threshold), None)
        if t is None:
            raise ValueError(f"{key}: no step reaches LPIPS {threshold:.3g} (the largest is {max(values):.3g}); "
                             f"lower it, or set asyrp.lpips_weights to null for explicit t_edit/t_boost")
        return t
    return (first(lpips_P, edit_threshold, "asyrp.lpips_edit_threshold"),
            first(lpips_x, boost_threshold, "asyrp.lpips_boost_threshold"))
