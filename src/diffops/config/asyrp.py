"""The asyrp section: AsyrpConfig (Asyrp's h-space editing on the frozen EDM model), its RULES and `_check_asyrp`.

The official code's defaults disagree (kwonminki/Asyrp_official): its argparse (lr 0.2, lambda_CLIP 3,
lambda_L1 0, 40/6/40 inversion/train/test steps), its README and script_train.sh (SGD lr 0.5, lambda_CLIP 1,
lambda_L1 3, 50/50/100 steps, 5 epochs of 100 images, batch 1, StepLR(3, 0.1), t_edit 500, t_boost 200) and
the reproduction's FID-table runs (AdamW lr 1e-5, lambda_CLIP 0.8, lambda_L1 3, 40 steps, 1,000 images).
The defaults here are the README / script_train.sh ones, the run the authors document; the others are
these same keys (optimizer, lr, lambda_dir, lambda_rec, *_steps, train_images, epochs).
"""

from dataclasses import dataclass

from .core import CELEBA_ATTRIBUTES
from .rules import POSITIVE, ConfigError, Rule, at_least, one_of

DIRECTIONS = ('attribute', 'clip')
STEPS = Rule(lambda v: 2 <= v <= 1000, 'an integer in [2, 1000]')
TIMESTEP = Rule(lambda v: 0 <= v <= 999, 'a DDPM timestep in [0, 999]')

# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AsyrpConfig:                                  # Asyrp (Kwon et al. 2023): Delta h in the frozen EDM model's h-space
    direction:              str     = 'attribute'   # attribute: raise the attribute net's logit of `attribute` on P_t^edit;
                                                    # clip: the directional CLIP loss of source_prompt -> target_prompt
    attribute:              str     = 'Smiling'     # the edited attribute (attribute direction; the metrics' target either way)
    clip_model:             str | None = None       # clip: a local open_clip model folder (weights file inside); never downloaded
    clip_arch:              str     = 'ViT-B-16'    # clip: open_clip architecture of that model (the reference's ViT-B/16)
    source_prompt:          str     = 'face'        # clip: the source text
    target_prompt:          str     = 'smiling face'  # clip: the target text
    t_0:                    int     = 999           # top DDPM step of inversion and generation (the reference's t_0)
    inversion_steps:        int     = 50            # deterministic DDIM inversion steps over [0, t_0] (n_inv_step)
    train_steps:            int     = 50            # generation steps during training; those >= t_edit train Delta h (n_train_step)
    edit_steps:             int     = 100           # generation steps when editing (n_test_step); Delta h scaled by train/edit steps
    t_edit:                 int     = 500           # Delta h applied for t >= t_edit (explicit, unless lpips_weights is set)
    t_boost:                int     = 200           # eta = 1 ("quality boosting") for t < t_boost at inference (explicit, idem)
    lpips_weights:          str | None = None       # a local LPIPS weights file: t_edit and t_boost from the LPIPS rules instead
    lpips_edit_threshold:   float   = 0.33          # t_edit: smallest t with LPIPS(P_t, x0) >= this x cos(prompts) (1 for attribute)
    lpips_boost_threshold:  float   = 1.2           # t_boost: smallest t with LPIPS(x_t, x0) >= this (the reference's scripts)
    train_images:           int     = 100           # first images of the train split that Delta h trains on
    test_images:            int     = 32            # first test images without `attribute` that are edited and measured
    epochs:                 int     = 5             # passes over the training images (n_iter)
    batch_size:             int     = 1             # images per chain; one optimiser step per timestep and batch
    optimizer:              str     = 'sgd'         # sgd (the reference) | adamw (the reproduction)
    lr:                     float   = 0.5           # learning rate (README 0.5; argparse 0.2; reproduction AdamW 1e-5)
    lr_step_epochs:         int     = 3             # StepLR: lr x lr_gamma every this many epochs
    lr_gamma:               float   = 0.1
    weight_decay:           float   = 0.0
    lambda_dir:             float   = 1.0           # weight of the direction loss (the reference's clip_loss_w)
    lambda_rec:             float   = 3.0           # weight of L1(P_t^edit, P_t^orig), times cos(prompts) for clip (l1_loss_w)
    scale:                  float   = 1.0           # Delta h scale at inference (hs_coeff_delta_h; negative = opposite edit)
    seed:                   int     = 0             # the random Delta h control and the eta = 1 noise, per image
    grid_images:            int     = 8             # columns of the before/after grid

RULES = {
    'asyrp.direction':              one_of(*DIRECTIONS),
    'asyrp.attribute':              Rule(lambda v: v in CELEBA_ATTRIBUTES, 'one of the 40 CelebA attributes',
                                         choices=CELEBA_ATTRIBUTES),
    'asyrp.t_0':                    Rule(lambda v: 1 <= v <= 999, 'a DDPM timestep in [1, 999]'),
    'asyrp.inversion_steps':        STEPS,
    'asyrp.train_steps':            STEPS,
    'asyrp.edit_steps':             STEPS,
    'asyrp.t_edit':                 TIMESTEP,
    'asyrp.t_boost':                TIMESTEP,
    'asyrp.lpips_edit_threshold':   POSITIVE,
    'asyrp.lpips_boost_threshold':  POSITIVE,
    'asyrp.train_images':           at_least(1),
    'asyrp.test_images':            at_least(1),
    'asyrp.epochs':                 at_least(1),
    'asyrp.batch_size':             at_least(1),
    'asyrp.optimizer':              one_of('sgd', 'adamw'),
    'asyrp.lr':                     POSITIVE,
    'asyrp.lr_step_epochs':         at_least(1),
    'asyrp.lr_gamma':               POSITIVE,
    'asyrp.weight_decay':           at_least(0),
    'asyrp.lambda_dir':             at_least(0),
    'asyrp.lambda_rec':             at_least(0),
    'asyrp.seed':                   at_least(0),
    'asyrp.grid_images':            at_least(1),
}

# ----------------------------------------------------------------------------

def _check_asyrp(cfg) -> None:
    """The edit interval lies inside the generation; a direction has what it needs."""
    a = cfg.asyrp
    if a.t_edit > a.t_0:
        raise ConfigError('asyrp.t_edit', f'must be <= asyrp.t_0 ({a.t_0}), got {a.t_edit}')
    if a.t_boost > a.t_edit:
        raise ConfigError('asyrp.t_boost', f'must be <= asyrp.t_edit ({a.t_edit}): quality boosting (eta = 1) runs '
                          f'below the edit interval, got {a.t_boost}')
    if a.lambda_dir == 0 and a.lambda_rec == 0:
        raise ConfigError('asyrp.lambda_dir', 'asyrp.lambda_dir and asyrp.lambda_rec are both 0: nothing to train')
    if a.direction == 'clip' and not a.clip_model:
        raise ConfigError('asyrp.clip_model', 'must name a local open_clip model folder when asyrp.direction is clip '
                          '(diffops never downloads one)')
    if a.direction == 'clip' and a.source_prompt == a.target_prompt:
        raise ConfigError('asyrp.target_prompt', f'must differ from asyrp.source_prompt ({a.source_prompt!r}): '
                          'their difference is the edit direction')


def check_attribute(cfg) -> None:
    """The attribute-directed edit needs its attribute in the attribute net (checked by the Asyrp stages,
    before any compute: other stages' params need not list Asyrp's attribute)."""
    if cfg.asyrp.attribute not in cfg.featurenet.attributes:
        raise ConfigError('asyrp.attribute', f'must be one of featurenet.attributes (the attribute net measures '
                          f'the edit), got {cfg.asyrp.attribute}')
