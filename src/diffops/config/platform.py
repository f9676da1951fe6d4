"""Data-platform sections: convert, encode, vae and latent, their RULES and `_check_data_platform`."""

from dataclasses import dataclass

from .rules import POSITIVE, ConfigError, Rule, at_least, one_of

# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvertConfig:                                # `diffops convert`: image source -> edm2 folder/zip or diffae LMDB
    transform:              str     = 'center-crop' # none, center-crop, center-crop-wide, center-crop-dhariwal, squash, celeba-crop, d2c-crop
    resolution:             int     = 64            # output side in pixels (0 = keep the size: none, celeba-crop, d2c-crop)
    height:                 int     = 0             # center-crop-wide only: output band height (0 = resolution)
    filter:                 str     = 'default'     # default (the transform's reference filter), lanczos, bicubic, bilinear, box, hamming, nearest
    crop:                   int     = 140           # celeba-crop: side of the central square
    celeba_split:           str     = 'all'         # CelebA-root sources: all, train, val or test
    max_images:             int     = 0             # convert the first N images of the sorted source (0 = all)
    on_error:               str     = 'skip'        # corrupt/truncated/non-image/too-small input: skip (listed in the report) or fail
    num_workers:            int     = 2             # decode/transform/encode processes (<= 1: in the main process)
    batch_size:             int     = 64            # images per worker task
    lmdb_codec:             str     = 'webp'        # .lmdb values: webp (diffae CelebA, LSUN), jpeg (FFHQ, CelebA-HQ) or png
    lmdb_quality:           int     = 100           # webp/jpeg quality (diffae: 100; LSUN bedroom: 90)
    lmdb_zfill:             int     = 7             # .lmdb key digits (diffae: CelebA 7, FFHQ/CelebA-HQ 5, LSUN 7)

@dataclass(frozen=True)
class EncodeConfig:                                 # `diffops encode`: images -> VAE moments (mean || std), edm2 layout
    input_range:            str     = '-1,1'        # VAE input: '-1,1' (REPA, SD convention) or '0,1' (edm2)
    batch_size:             int     = 64            # images per VAE call
    xflip:                  bool    = False         # also encode flipped images into <dest>-xflip (same names and order)
    split:                  str     = 'train'       # prepared-container sources: the split to encode
    num_workers:            int     = 0             # DataLoader workers decoding source images
    check_images:           int     = 16            # also encoded one at a time; the max deviation goes to meta.json

@dataclass(frozen=True)
class VAEConfig:                                    # quickstart diffusers AutoencoderKL (stands in for sd-vae-ft-mse)
    block_channels:         tuple[int, ...] = (16, 32, 32)  # channels per level; latents are resolution / 2^(levels - 1) wide
    latent_channels:        int     = 4             # C of z (stored moments have 2C channels)
    layers_per_block:       int     = 1             # ResNet blocks per encoder level (decoder: + 1)
    norm_num_groups:        int     = 8             # GroupNorm groups; must divide every block_channels entry
    duration_kimg:          float   = 8.0           # training length in thousands of images
    batch_size:             int     = 16            # images per optimizer step (16: more steps per CPU-second than 64)
    lr:                     float   = 1e-3          # Adam learning rate
    kl_weight:              float   = 1e-6          # weight of KL(q(z|x) || N(0, I)) per pixel (LDM: 1e-6)
    seed:                   int     = 0             # seed of initialisation, batches and z draws

@dataclass(frozen=True)
class LatentConfig:                                 # EDM baseline on VAE latents (train/sample/evaluate-latent)
    block_channels:         tuple[int, ...]  = (32, 64)       # UNet channels per level, at the latent resolution
    attention:              tuple[bool, ...] = (False, True)  # self-attention at that level
    layers_per_block:       int     = 1             # ResNet blocks per level
    norm_num_groups:        int     = 8             # GroupNorm groups; must divide every block_channels entry
    sigma_data:             float   = 1.0           # std of the scaled latents (scaling_factor makes it about 1)
    duration_kimg:          float   = 20.0          # training length in kimg (other train.* keys are shared)
    batch_size:             int     = 64            # latents per optimizer step, over all processes
    lr:                     float   = 2e-3          # Adam learning rate after the ramp-up
    xflip:                  bool    = False         # half the draws from the flipped image's moments (needs encode.xflip)

# ----------------------------------------------------------------------------

RULES = {
    'convert.transform':            one_of('none', 'center-crop', 'center-crop-wide', 'center-crop-dhariwal', 'squash',
                                           'celeba-crop', 'd2c-crop'),
    'convert.resolution':           at_least(0),
    'convert.height':               at_least(0),
    'convert.filter':               one_of('default', 'lanczos', 'bicubic', 'bilinear', 'box', 'hamming', 'nearest'),
    'convert.crop':                 POSITIVE,
    'convert.celeba_split':         one_of('all', 'train', 'val', 'test'),
    'convert.max_images':           at_least(0),
    'convert.on_error':             one_of('skip', 'fail'),
    'convert.num_workers':          at_least(0),
    'convert.batch_size':           at_least(1),
    'convert.lmdb_codec':           one_of('webp', 'jpeg', 'png'),
    'convert.lmdb_quality':         Rule(lambda v: 1 <= v <= 100, 'an integer in [1, 100]'),
    'convert.lmdb_zfill':           at_least(1),
    'encode.input_range':           one_of('-1,1', '0,1'),
    'encode.batch_size':            at_least(1),
    'encode.split':                 one_of('train', 'val', 'test'),
    'encode.num_workers':           at_least(0),
    'encode.check_images':          at_least(0),
    'vae.block_channels':           POSITIVE,
    'vae.latent_channels':          at_least(1),
    'vae.layers_per_block':         at_least(1),
    'vae.norm_num_groups':          at_least(1),
    'vae.duration_kimg':            POSITIVE,
    'vae.batch_size':               at_least(1),
    'vae.lr':                       POSITIVE,
    'vae.kl_weight':                at_least(0),
    'vae.seed':                     at_least(0),
    'latent.block_channels':        POSITIVE,
    'latent.layers_per_block':      at_least(1),
    'latent.norm_num_groups':       at_least(1),
    'latent.sigma_data':            POSITIVE,
    'latent.duration_kimg':         POSITIVE,
    'latent.batch_size':            at_least(1),
    'latent.lr':                    POSITIVE,
}

# ----------------------------------------------------------------------------

def _check_data_platform(cfg) -> None:
    """convert / vae / latent: combinations that cannot work, named by the key to change."""
    from ..data.transforms import check_transform   # the transforms' own rules (pure, PIL only)
    c = cfg.convert
    try:
        check_transform(c.transform, c.resolution, c.height, c.filter, c.crop)
    except ValueError as e:
        key, _, problem = str(e).partition(': ')
        raise ConfigError(f'convert.{key}', problem) from None
    for section in ('vae', 'latent'):
        s = getattr(cfg, section)
        if not s.block_channels:
            raise ConfigError(f'{section}.block_channels', 'must list at least one level, got []')
        for i, channels in enumerate(s.block_channels):
            if channels % s.norm_num_groups:
                raise ConfigError(f'{section}.block_channels[{i}]', f'must be a multiple of {section}.norm_num_groups '
                                  f'({s.norm_num_groups}), got {channels}')
    if len(cfg.latent.attention) != len(cfg.latent.block_channels):
        raise ConfigError('latent.attention', f'must have one entry per latent.block_channels entry '
                          f'({len(cfg.latent.block_channels)}), got {len(cfg.latent.attention)}')
    f = 2 ** (len(cfg.vae.block_channels) - 1)
    if cfg.data.resolution % f:
        raise ConfigError('vae.block_channels', f'{len(cfg.vae.block_channels)} levels downsample by {f}, which '
                          f'does not divide data.resolution ({cfg.data.resolution})')
    if (cfg.data.resolution // f) % 2 ** (len(cfg.latent.block_channels) - 1):
        raise ConfigError('latent.block_channels', f'{len(cfg.latent.block_channels)} levels cannot halve the '
                          f'{cfg.data.resolution // f}-wide latents {len(cfg.latent.block_channels) - 1} times')
