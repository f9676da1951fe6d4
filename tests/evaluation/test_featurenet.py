"""AttrNet training and extraction on a tiny synthetic problem whose attributes are visible."""

import numpy as np
import pytest
import torch

from diffops.evaluation.featurenet import attribute_rates, extract, images_to_float, train_attrnet

def synthetic(num: int, seed: int, resolution: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noise images; attribute 0 brightens the left half, attribute 1 the top half."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (num, 2), generator=g)
    x = torch.randint(0, 100, (num, 3, resolution, resolution), generator=g)
    half = resolution // 2
    x[:, :, :, :half] += 120 * labels[:, 0, None, None, None]
    x[:, :, :half, :] += 120 * labels[:, 1, None, None, None]
    return x.clamp(0, 255).to(torch.uint8), labels

TINY = dict(width=8, feature_dim=16, batch_size=32, lr=5e-3)

def train(seed: int, epochs: int, num_train: int = 512, **kwargs):
    train_x, train_y = synthetic(num_train, seed=0)
    val_x, val_y = synthetic(128, seed=1)
    return train_attrnet(train_x, train_y, val_x, val_y, epochs=epochs, generator=torch.Generator().manual_seed(seed),
                         **TINY, **kwargs)

def test_images_to_float():
    x = torch.tensor([0, 127, 255], dtype=torch.uint8)
    torch.testing.assert_close(images_to_float(x), torch.tensor([-1.0, 127 / 127.5 - 1, 1.0]))
    with pytest.raises(TypeError):
        images_to_float(x.float())

def test_learns_visible_attributes():
    calls = []
    model, history = train(seed=0, epochs=2, attribute_names=['left', 'top'], on_epoch=lambda e, m: calls.append((e, m)))
    assert [e for e, _ in calls] == [1, 2]
    assert history == [m for _, m in calls]
    last = history[-1]
    assert {'train_loss', 'val_loss', 'val_acc_mean', 'val_acc/left', 'val_acc/top', 'epoch_time_sec'} <= last.keys()
    assert last['val_acc/left'] > 0.9 and last['val_acc/top'] > 0.9, last
    assert last['val_loss'] < history[0]['train_loss']
    assert not model.training

def test_deterministic_given_generator():
    state_a = train(seed=3, epochs=1, num_train=96)[0].state_dict()
    state_b = train(seed=3, epochs=1, num_train=96)[0].state_dict()
    state_c = train(seed=4, epochs=1, num_train=96)[0].state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)

def test_does_not_touch_global_rng():
    before = torch.random.get_rng_state()
    train(seed=0, epochs=1, num_train=32)
    assert torch.equal(torch.random.get_rng_state(), before)

def test_extract_and_rates():
    model, _ = train(seed=0, epochs=1, num_train=64)
    images, _ = synthetic(37, seed=2)
    features, probs = extract(model, images, batch_size=16)
    assert features.shape == (37, 16) and features.dtype == np.float64
    assert probs.shape == (37, 2) and probs.dtype == np.float64
    assert ((probs >= 0) & (probs <= 1)).all()
    # Batch size does not change the result beyond round-off.
    features_1, probs_1 = extract(model, images, batch_size=37)
    np.testing.assert_allclose(features, features_1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs, probs_1, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(attribute_rates(np.array([[0.9, 0.1], [0.6, 0.5], [0.2, 0.7]])), [2 / 3, 1 / 3])
