import json
import math
import os
import re
import shutil
import subprocess
import sys
import types
from dataclasses import fields, replace
from pathlib import Path
from typing import get_args, get_origin

import pytest

from diffops.config import (
    CELEBA_ATTRIBUTES, SECTIONS, Config, ConfigError, apply_overrides, flatten, load_params, section_hash, to_dict,
)
from diffops.config import parse_yaml

ROOT = Path(__file__).resolve().parents[2]

# ----------------------------------------------------------------------------
# The params files of the repository.

def test_params_yaml_is_the_defaults():
    assert load_params(ROOT / 'params.yaml') == Config()

def test_params_yaml_lists_every_key():
    # "Every hyperparameter lives in params.yaml": the quickstart file spells out the whole schema.
    raw = parse_yaml((ROOT / 'params.yaml').read_text(), 'params.yaml')
    schema = to_dict(Config())
    assert list(raw) == list(schema)
    for section in schema:
        assert list(raw[section]) == list(schema[section]), section

def _dvc_params_keys(dvc_yaml: Path):
    # dvc.yaml `params:` entries are 'section.key' / 'section' (in the stage's params.yaml) or
    # {file: [keys]}; yield (params file, key) for each key.
    stages = (parse_yaml(dvc_yaml.read_text(), str(dvc_yaml)) or {}).get('stages', {})
    for stage in stages.values():
        for entry in stage.get('params', []):
            if isinstance(entry, str):
                yield 'params.yaml', entry
            else:
                for file, keys in entry.items():
                    for key in keys or []:
                        yield file, key

DVC_YAMLS = [ROOT / 'dvc.yaml'] + sorted(ROOT.glob('pipelines/*/dvc.yaml'))

@pytest.mark.parametrize('dvc_yaml', DVC_YAMLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_dvc_yaml_params_exist_in_schema(dvc_yaml):
    if not dvc_yaml.exists():
        pytest.skip(f'{dvc_yaml.relative_to(ROOT)} not written yet')
    keys = [(file, key) for file, key in _dvc_params_keys(dvc_yaml) if Path(file).name == 'params.yaml']
    assert keys, 'no params.yaml keys listed'
    for file, key in keys:
        section, _, name = key.partition('.')
        assert section in SECTIONS, f'{file}: {key}: unknown section'
        if name and '${' not in name:
            assert name in to_dict(Config())[section], f'{file}: {key}: unknown key'

@pytest.mark.parametrize('params_yaml', sorted(ROOT.glob('pipelines/*/params.yaml')),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_pipeline_params_load(params_yaml):
    # The method registry is tested with the methods; here only the rest of the schema.
    raw = parse_yaml(params_yaml.read_text(), str(params_yaml))
    load_params(params_yaml, methods=[raw.get('method', {}).get('name', 'edm')])

def test_celeba_attributes_match_data_module():
    celeba = pytest.importorskip('diffops.data.celeba')
    assert CELEBA_ATTRIBUTES == tuple(celeba.ATTRIBUTE_NAMES)

# ----------------------------------------------------------------------------
# Partial files, types and YAML reading.

def test_missing_sections_and_keys_take_defaults():
    assert load_params({}) == Config()
    cfg = load_params({'train': {'lr': 1e-3}})
    assert cfg == replace(Config(), train=replace(Config().train, lr=1e-3))

def test_defaults_have_their_annotated_types():
    # A default of 24 in a float field would equal 24.0 yet hash differently in section_hash.
    for cls in SECTIONS.values():
        for f in fields(cls):
            value = getattr(cls(), f.name)
            if get_origin(f.type) is tuple:
                assert all(type(v) is get_args(f.type)[0] for v in value), f.name
            elif get_origin(f.type) is types.UnionType:             # `str | None`
                assert type(value) in get_args(f.type), f'{cls.__name__}.{f.name}'
            else:
                assert type(value) is f.type, f'{cls.__name__}.{f.name}'

def test_floats_accept_ints_and_inf_only_where_allowed():
    cfg = load_params({'sample': {'sigma_max': 80, 'S_max': math.inf}, 'train': {'duration_kimg': 1}})
    assert type(cfg.sample.sigma_max) is float and cfg.sample.S_max == math.inf
    assert type(cfg.train.duration_kimg) is float
    assert load_params({'sample': {'sigma_max': 80}}) == Config()

def test_lists_become_tuples_and_config_is_hashable():
    cfg = load_params({'model': {'block_channels': [64, 128], 'attention': [False, True]}})
    assert cfg.model.block_channels == (64, 128) and cfg.model.attention == (False, True)
    assert hash(cfg) == hash(load_params(to_dict(cfg)))

def test_method_registry_is_passed_in():
    assert load_params({'method': {'name': 'erd'}}, methods={'edm', 'erd'}).method.name == 'erd'
    with pytest.raises(ConfigError, match=r"^params: method\.name: must be one of edm, got 'erd'"):
        load_params({'method': {'name': 'erd'}})

def test_yaml_is_read_as_dvc_reads_it(tmp_path):
    # YAML 1.2: bare `no` is a string and 1e-4 a number (PyYAML would say False and '1e-4').
    path = tmp_path / 'params.yaml'
    path.write_text('train:\n  precision: no\n  lr: 1e-4\n')
    cfg = load_params(path)
    assert cfg.train.precision == 'no' and cfg.train.lr == 1e-4

def test_dvc_exp_run_set_params_load(tmp_path):
    # What `dvc exp run -S` writes back into params.yaml must load, e.g. an unquoted `precision: no`.
    hydra = pytest.importorskip('dvc.utils.hydra')
    path = tmp_path / 'params.yaml'
    shutil.copy(ROOT / 'params.yaml', path)
    overrides = ['train.precision=no', 'train.lr=1e-4', 'model.block_channels=[32,64]', 'model.attention=[false,true]']
    hydra.apply_overrides(path, overrides)
    assert re.search(r'^  precision: no\s', path.read_text(), re.M)  # unquoted: YAML 1.1 would read False
    expected = load_params(apply_overrides(parse_yaml((ROOT / 'params.yaml').read_text(), 'params.yaml'), overrides))
    assert load_params(path) == expected
    assert expected.train.lr == 1e-4 and expected.model.block_channels == (32, 64)

# ----------------------------------------------------------------------------
# Errors: one line, naming the dotted key and what is allowed.

ERRORS = [
    # raw params,                                           key,                         part of the message
    ({'trian': {}},                                         'trian',                     'unknown section (did you mean train? allowed: '),
    ({'train': {'lrr': 1e-3}},                              'train.lrr',                 'unknown key (did you mean lr? allowed: adam_betas, batch_size, checkpoint_every_kimg,'),
    ({'train': 0.001},                                      'train',                     'must be a mapping of keys (seed, duration_kimg,'),
    ({'method': None},                                      'method',                    'must be a mapping of keys (name), got null'),
    # types
    ({'train': {'batch_size': 64.0}},                       'train.batch_size',          'must be an integer >= 1, got 64.0'),
    ({'data': {'resolution': True}},                        'data.resolution',           'must be a positive integer, got true'),
    ({'train': {'lr': 'fast'}},                             'train.lr',                  "must be a positive number, got 'fast'"),
    ({'train': {'lr': math.inf}},                           'train.lr',                  'must be a positive number, got .inf'),
    ({'edm': {'P_mean': math.nan}},                         'edm.P_mean',                'must be a number, got nan'),
    ({'train': {'xflip': 'yes'}},                           'train.xflip',               "must be true or false, got 'yes'"),
    ({'train': {'xflip': 1}},                               'train.xflip',               'must be true or false, got 1'),
    ({'train': {'precision': False}},                       'train.precision',           'must be one of no, fp16, bf16, got false'),
    ({'tracking': {'experiment': 7}},                       'tracking.experiment',       'must be a non-empty string, got 7'),
    ({'tracking': {'experiment': ''}},                      'tracking.experiment',       "must be a non-empty string, got ''"),
    ({'model': {'block_channels': 32}},                     'model.block_channels',      'must be a list, got 32'),
    ({'model': {'attention': [0, 0, 1]}},                   'model.attention[0]',        'must be true or false, got 0'),
    ({'model': {'block_channels': [32, '64', 64]}},         'model.block_channels[1]',   "must be a positive integer, got '64'"),
    # fixed sets
    ({'data': {'on_error': 'ignore'}},                      'data.on_error',             "must be one of skip, fail, got 'ignore'"),
    ({'train': {'precision': 'fp32'}},                      'train.precision',           "must be one of no, fp16, bf16, got 'fp32'"),
    ({'method': {'name': 'ddpm'}},                          'method.name',               "must be one of edm, got 'ddpm'"),
    ({'tracking': {'log_checkpoints': 'al'}},               'tracking.log_checkpoints',  "must be one of none, last, all, got 'al' (did you mean all?)"),
    ({'evaluate': {'reference_split': 'valid'}},            'evaluate.reference_split',  "must be one of train, val, test, got 'valid' (did you mean val?)"),
    ({'featurenet': {'attributes': ['Male', 'Eyeglass']}},  'featurenet.attributes[1]',  "one of the 40 CelebA attributes (5_o_Clock_Shadow, ..., Young), got 'Eyeglass' (did you mean Eyeglasses?)"),
    # impossible values
    ({'data': {'resolution': -32}},                         'data.resolution',           'must be a positive integer, got -32'),
    ({'sample': {'steps': 0}},                              'sample.steps',              'must be an integer >= 1, got 0'),
    ({'generate': {'num_images': 9}},                       'generate.num_images',       'must be an integer >= 10, got 9'),
    ({'sample': {'num_images': 0}},                         'sample.num_images',         'must be an integer >= 1, got 0'),
    ({'featurenet': {'batch_size': 0}},                     'featurenet.batch_size',     'must be an integer >= 1, got 0'),
    ({'train': {'batch_size': 0}},                          'train.batch_size',          'must be an integer >= 1, got 0'),
    ({'sample': {'batch_size': 0}},                         'sample.batch_size',         'must be an integer >= 1, got 0'),
    ({'evaluate': {'batch_size': -1}},                      'evaluate.batch_size',       'must be an integer >= 1, got -1'),
    ({'featurenet': {'lr': 0}},                             'featurenet.lr',             'must be a positive number, got 0'),
    ({'train': {'lr': -1e-3}},                              'train.lr',                  'must be a positive number, got -0.001'),
    ({'model': {'dropout': 1}},                             'model.dropout',             'must be a number in [0, 1), got 1.0'),
    ({'model': {'dropout': -0.1}},                          'model.dropout',             'must be a number in [0, 1), got -0.1'),
    ({'train': {'duration_kimg': 0}},                       'train.duration_kimg',       'must be a positive number, got 0.0'),
    ({'train': {'lr_rampup_kimg': -1}},                     'train.lr_rampup_kimg',      'must be a number >= 0, got -1.0'),
    ({'train': {'ema_halflife_kimg': 0}},                   'train.ema_halflife_kimg',   'must be a positive number, got 0.0'),
    ({'train': {'checkpoint_every_kimg': 0}},               'train.checkpoint_every_kimg', 'must be a positive number, got 0.0'),
    ({'train': {'grid_every_kimg': -8}},                    'train.grid_every_kimg',     'must be a positive number, got -8.0'),
    ({'train': {'log_every_steps': 0}},                     'train.log_every_steps',     'must be an integer >= 1, got 0'),
    ({'sample': {'sigma_min': 0}},                          'sample.sigma_min',          'must be a positive number, got 0.0'),
    ({'sample': {'sigma_max': math.inf}},                   'sample.sigma_max',          'must be a positive number, got .inf'),
    ({'sample': {'rho': 0}},                                'sample.rho',                'must be a positive number, got 0.0'),
    ({'sample': {'S_churn': -1}},                           'sample.S_churn',            'must be a number >= 0, got -1.0'),
    ({'sample': {'S_max': -math.inf}},                      'sample.S_max',              'must be a number >= 0 or .inf, got -.inf'),
    # rules between keys and on whole lists
    ({'data': {'crop': 16}},                                'data.crop',                 'must be >= data.resolution (32), got 16'),
    ({'model': {'attention': [False, True]}},               'model.attention',           'must have one entry per model.block_channels entry (3), got 2'),
    ({'model': {'block_channels': [], 'attention': []}},    'model.block_channels',      'must list at least one UNet level, got []'),
    ({'model': {'block_channels': [32, 60, 64]}},           'model.block_channels[1]',   'must be a multiple of model.norm_num_groups (8), got 60'),
    ({'data': {'resolution': 36}, 'model': {'block_channels': [32, 64, 64, 64], 'attention': [False] * 4}},
                                                            'data.resolution',           '36 cannot be halved 3 times by a UNet with 4 blocks (must be a multiple of 8)'),
    ({'sample': {'sigma_min': 100}},                        'sample.sigma_min',          'must be < sample.sigma_max (80.0), got 100.0'),
    ({'sample': {'S_min': 2, 'S_max': 1}},                  'sample.S_min',              'must be <= sample.S_max (1.0), got 2.0'),
    ({'featurenet': {'attributes': []}},                    'featurenet.attributes',     'must list at least one CelebA attribute, got []'),
    ({'featurenet': {'attributes': ['Male', 'Young', 'Male']}}, 'featurenet.attributes[2]', 'Male is listed twice'),
]

@pytest.mark.parametrize('raw, key, fragment', ERRORS, ids=[f'{key}-{i}' for i, (_, key, _) in enumerate(ERRORS)])
def test_error_names_the_key(raw, key, fragment):
    with pytest.raises(ConfigError) as info:
        load_params(raw)
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'params: {key}: '), message
    assert fragment in message, message
    assert info.value.key == key and isinstance(info.value, ValueError)

def test_error_names_the_file(tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_text('data:\n  resolution: -32\n')
    with pytest.raises(ConfigError, match=f'^{path}: data.resolution: must be a positive integer, got -32$'):
        load_params(path)

@pytest.mark.parametrize('text, fragment', [
    ('- train\n',                                   'must be a mapping of sections (generate, data,'),
    ('',                                            'must be a mapping of sections'),
    ('train:\n  lr: 0.1\n  lr: 0.2\n',              'line 3: invalid YAML: found duplicate key "lr"'),
    ('train: {lr: 0.1\n',                           'invalid YAML:'),
])
def test_file_errors(tmp_path, text, fragment):
    path = tmp_path / 'params.yaml'
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert '\n' not in str(info.value) and str(info.value).startswith(f'{path}: ')
    assert fragment in str(info.value), str(info.value)

# ----------------------------------------------------------------------------
# Views of a Config.

def test_to_dict_round_trips():
    cfg = load_params({'model': {'block_channels': [64, 64], 'attention': [True, False]}})
    d = to_dict(cfg)
    assert d['model']['block_channels'] == [64, 64] and d['sample']['S_max'] == math.inf
    assert load_params(json.loads(json.dumps(d))) == cfg
    assert to_dict(cfg.train) == d['train']

def test_flatten():
    flat = flatten(Config())
    assert list(flat) == [f'{s}.{k}' for s, values in to_dict(Config()).items() for k in values]
    assert all(type(v) in (bool, int, float, str) for v in flat.values())
    assert flat['train.lr'] == 2e-3 and flat['train.xflip'] is True and flat['edm.P_mean'] == -1.2
    assert flat['model.block_channels'] == str(list(Config().model.block_channels))
    assert flat['model.attention'] == '[false, false, true]'
    assert flat['featurenet.attributes'].startswith('[Male, Smiling, Eyeglasses,')

def test_section_hash_is_stable():
    cfg = Config()
    h = section_hash(cfg, 'train', 'model')
    assert len(h) == 16 and int(h, 16) >= 0
    assert h == section_hash(cfg, 'model', 'train') == section_hash(load_params(to_dict(cfg)), 'train', 'model')
    # The same values written differently (80 vs 80.0, a default spelt out vs left out) hash alike.
    assert section_hash(load_params({'sample': {'sigma_max': 80}}), 'sample') == section_hash(cfg, 'sample')
    assert section_hash(replace(cfg, train=replace(cfg.train, duration_kimg=float(int(cfg.train.duration_kimg)))), 'train') == section_hash(cfg, 'train')
    # ... and the hash does not depend on the interpreter (no hash randomization, no dict order).
    code = "from diffops.config import Config, section_hash; print(section_hash(Config(), 'train', 'model'))"
    env = {**os.environ, 'PYTHONPATH': str(ROOT / 'src'), 'PYTHONHASHSEED': '12345'}
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == h

def test_section_hash_is_sensitive():
    cfg = Config()
    changed = load_params({'train': {'lr': 1e-3}})
    assert section_hash(changed, 'train') != section_hash(cfg, 'train')
    assert section_hash(changed, 'model', 'edm') == section_hash(cfg, 'model', 'edm')
    assert section_hash(changed) != section_hash(cfg)
    assert section_hash(cfg, 'train') != section_hash(cfg, 'train', 'model')
    with pytest.raises(ConfigError, match='trian: unknown section'):
        section_hash(cfg, 'trian')

def test_apply_overrides():
    raw = {'train': {'lr': 2e-3, 'batch_size': 64}}
    out = apply_overrides(raw, ['train.lr=1e-4', 'model.block_channels=[32, 64]', 'model.attention=[false, true]',
                                'train.precision=no', 'train.xflip=false', 'sample.S_max=.inf'])
    assert raw == {'train': {'lr': 2e-3, 'batch_size': 64}}  # input untouched
    assert out['train'] == {'lr': 1e-4, 'batch_size': 64, 'precision': 'no', 'xflip': False}
    assert out['model'] == {'block_channels': [32, 64], 'attention': [False, True]}
    cfg = load_params(out)
    assert cfg.train.lr == 1e-4 and cfg.model.block_channels == (32, 64) and cfg.sample.S_max == math.inf

@pytest.mark.parametrize('override, message', [
    ('train.lrr=0.1',   'overrides: train.lrr: unknown key (did you mean lr?'),
    ('trian.lr=0.1',    'overrides: trian: unknown section (did you mean train?'),
    ('train.lr',        "overrides: 'train.lr': expected section.key=value"),
    ('train=0.1',       "overrides: 'train=0.1': expected section.key=value"),
])
def test_apply_overrides_rejects_unknown_keys(override, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, [override])
    assert str(info.value).startswith(message), str(info.value)

# ----------------------------------------------------------------------------
# Sections by area, and the layers.

def test_every_rule_names_a_key():
    from diffops.config import RULES
    keys = {f'{s}.{f.name}' for s, cls in SECTIONS.items() for f in fields(cls)}
    assert set(RULES) <= keys, sorted(set(RULES) - keys)

def test_tiw_train_is_a_train_section_with_its_own_duration():
    from diffops.config import RULES, TrainConfig
    assert list(SECTIONS)[-4:-2] == ['tiw', 'tiw_train'] and SECTIONS['tiw_train'] is TrainConfig
    assert Config().tiw_train == replace(TrainConfig(), duration_kimg=16.0)
    assert load_params({'tiw_train': {'lr': 1e-3}}).tiw_train == replace(TrainConfig(), duration_kimg=16.0, lr=1e-3)
    assert all(RULES[f'tiw_train.{k[len("train."):]}'] is rule for k, rule in RULES.items() if k.startswith('train.'))
    with pytest.raises(ConfigError, match=r'^params: tiw_train\.batch_size: must be an integer >= 1, got 0$'):
        load_params({'tiw_train': {'batch_size': 0}})
    with pytest.raises(ConfigError, match=r'^params: tiw\.duration_kimg: unknown key'):
        load_params({'tiw': {'duration_kimg': 16}})

def test_diti_steps_are_the_ddpm_steps():
    from diffops.config.diti import T
    from diffops.diffusion.ddpm import T as ddpm_T
    assert T == ddpm_T

def test_layers():
    # config sits above data only; data does not import config.
    code = ('import sys, diffops.config; print(sorted({m.split(".")[1] for m in sys.modules if m.startswith("diffops.")})); '
            'import diffops.data.celeba, diffops.data.transforms')
    out = subprocess.run([sys.executable, '-c', code], env={**os.environ, 'PYTHONPATH': str(ROOT / 'src')},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['config', 'data']"
    code = 'import sys, diffops.data.celeba, diffops.data.transforms; print("diffops.config" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], env={**os.environ, 'PYTHONPATH': str(ROOT / 'src')},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'False'

# ----------------------------------------------------------------------------

def test_optional_path_takes_null_or_a_string():
    assert load_params({'evaluate': {'inception_weights': None}}).evaluate.inception_weights is None
    assert load_params({'evaluate': {'inception_weights': 'w.pth'}}).evaluate.inception_weights == 'w.pth'
    assert flatten(Config())['evaluate.inception_weights'] == 'null'
    for bad in (3, '', True):
        with pytest.raises(ConfigError, match=r'evaluate\.inception_weights: must be null or'):
            load_params({'evaluate': {'inception_weights': bad}})

def test_sweeping_on_fid_needs_the_inception_weights():
    with pytest.raises(ConfigError, match=r'sweep\.metric: fid is measured in Inception-v3 space: set evaluate\.inception_weights'):
        load_params({'sweep': {'metric': 'fid'}})
    cfg = load_params({'sweep': {'metric': 'fid'}, 'evaluate': {'inception_weights': 'w.pth'}})
    assert cfg.sweep.metric == 'fid'
    with pytest.raises(ConfigError, match=r'sweep\.direction: precision is better when higher'):
        load_params({'sweep': {'metric': 'precision'}, 'evaluate': {'inception_weights': 'w.pth'}})
