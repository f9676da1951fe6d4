"""What the Asyrp stages share: the frozen EDM model, the inversion cache checked against the params, and the
edit interval (t_edit, t_boost) with the rule that chose it."""
from __future__ import annotations

from pathlib import Path

from ..artifacts.asyrp import check_inversion_key, load_inversion
from ..artifacts.denoiser import load_denoiser
from ..evaluation.asyrp import lpips_intervals
from ..methods.asyrp import check_frozen_dpm
from ..utils.io import file_sha256


def load_frozen_dpm(edm_dir: Path):
    """(D, sha256 of its weights): the train stage's EDM model, checked to be EDM-preconditioned."""
    D, _ = load_denoiser(edm_dir)
    check_frozen_dpm(D, edm_dir)
    return D, file_sha256(Path(edm_dir) / "ema.safetensors")


def load_checked_inversion(cfg, inv_dir: Path, edm_sha256: str):
    """The inversion cache, refused by name when it was made with another model, t_0, step count or attribute."""
    spec, splits = load_inversion(inv_dir)
    check_inversion_key(spec, edm_sha256, inv_dir)
    a, key = cfg.asyrp, spec["key"]
    for name, have, want in (("t_0", key["t_0"], a.t_0), ("inversion_steps", key["inversion_steps"], a.inversion_steps),
                             ("attribute", spec["attribute"], a.attribute),
                             ("train_images", len(spec["ids"]["train"]), a.train_images),
                             ("test_images", len(spec["ids"]["test"]), a.test_images)):
        if have != want:
            raise ValueError(f"{inv_dir}: inverted with asyrp.{name} = {have}, the params say {want}; "
                             f"rerun the asyrp_invert stage")
    return spec, splits


def edit_interval(cfg, inversion_spec: dict, rec_cosine: float = 1.0) -> tuple[int, int, str]:
    """(t_edit, t_boost, rule): the LPIPS rules on the inversion's tables when asyrp.lpips_weights is set, else
    the explicit params."""
    a = cfg.asyrp
    table = inversion_spec.get("lpips")
    if a.lpips_weights is None:
        return a.t_edit, a.t_boost, "explicit: asyrp.t_edit, asyrp.t_boost (no asyrp.lpips_weights)"
    if table is None:
        raise ValueError("asyrp.lpips_weights is set but the inversion has no LPIPS tables; rerun asyrp_invert")
    threshold = a.lpips_edit_threshold * rec_cosine
    t_edit, t_boost = lpips_intervals(table["t"], table["lpips_P_t"], table["lpips_x_t"], threshold,
                                      a.lpips_boost_threshold)
    return t_edit, t_boost, (f"lpips: t_edit = min t with LPIPS(P_t, x0) >= {threshold:.4g}, t_boost = min t with "
                             f"LPIPS(x_t, x0) >= {a.lpips_boost_threshold:.4g} ({len(inversion_spec['ids']['train'])} "
                             f"inverted training images)")
