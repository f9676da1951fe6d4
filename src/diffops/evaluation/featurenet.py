"""Train the attribute classifier (AttrNet) and extract its features and attribute probabilities.

Its penultimate features are the feature space of `fd_attrnet`; its probabilities give attribute rates
of generated sets (the bias metrics of TIW-DSM). Deterministic given the torch.Generator passed in.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from diffops.nets.attrnet import AttrNet

# ----------------------------------------------------------------------------

def images_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1]: x / 127.5 - 1."""
    if x.dtype != torch.uint8:
        raise TypeError(f'expected uint8 images, got {x.dtype}')
    return x.to(torch.float32) / 127.5 - 1

def to_resolution(images: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """uint8 images resized (bilinear, rounded back to uint8) to the attribute net's input side; unchanged when
    they already have it or resolution is None. Samples and references go through the same resize."""
    if not resolution or images.shape[-1] == resolution:
        return images
    x = F.interpolate(images.float(), size=resolution, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def _check_split(images: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f'{name}_images must have shape (N, 3, R, R), got {tuple(images.shape)}')
    if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise ValueError(f'{name}_labels must have shape (N, A) with N = {images.shape[0]}, got {tuple(labels.shape)}')
    if images.shape[0] == 0:
        raise ValueError(f'{name} split is empty')

def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, [], generator=generator))

@torch.no_grad()
def _evaluate(model: AttrNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int, device) -> dict:
    """Validation loss (mean BCE over images and attributes) and accuracy per attribute."""
    model.eval()
    loss_sum, correct = 0.0, torch.zeros(labels.shape[1], dtype=torch.float64)
    for i in range(0, images.shape[0], batch_size):
        x = images_to_float(images[i : i + batch_size].to(device))
        y = labels[i : i + batch_size].to(device, torch.float32)
        logits = model(x)
        loss_sum += F.binary_cross_entropy_with_logits(logits, y, reduction='sum').item()
        correct += ((logits > 0) == (y > 0.5)).sum(dim=0).cpu().to(torch.float64)
    n = images.shape[0]
    return dict(loss=loss_sum / (n * labels.shape[1]), acc=(correct / n).numpy())

# ----------------------------------------------------------------------------

def train_attrnet(
    train_images: torch.Tensor,         # (N, 3, R, R) uint8
    train_labels: torch.Tensor,         # (N, A) in {0, 1}
    val_images: torch.Tensor,           # (M, 3, R, R) uint8
    val_labels: torch.Tensor,           # (M, A) in {0, 1}
    *,
    width: int,
    feature_dim: int,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,         # CPU generator: init seed, shuffling, flips
    device: str | torch.device = 'cpu',
    on_epoch: Callable[[int, dict], None] | None = None,
    attribute_names: Sequence[str] | None = None,
) -> tuple[AttrNet, list[dict]]:
    """Train AttrNet with Adam on the multi-label BCE loss, with random horizontal flips.

    After each epoch (1-based) computes, in eval mode on the validation split, `val_loss`, `val_acc_mean`
    and `val_acc/<attribute>` (names from attribute_names, else the index), plus `train_loss` (mean over the
    epoch's batches) and `epoch_time_sec`; calls on_epoch(epoch, metrics) and appends metrics to the history.
    Returns the model (in eval mode) and the history.
    """
    _check_split(train_images, train_labels, 'train')
    _check_split(val_images, val_labels, 'val')
    num_attributes = train_labels.shape[1]
    if val_labels.shape[1] != num_attributes:
        raise ValueError(f'train has {num_attributes} attributes but val has {val_labels.shape[1]}')
    if attribute_names is None:
        attribute_names = [str(a) for a in range(num_attributes)]
    if len(attribute_names) != num_attributes:
        raise ValueError(f'{len(attribute_names)} attribute names for {num_attributes} attributes')
    train_images, train_labels = train_images.cpu(), train_labels.cpu().to(torch.float32)

    # Build the network under a seed drawn from the generator, leaving the global RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_from(generator))
        model = AttrNet(num_attributes, width=width, feature_dim=feature_dim)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    history = []
    num_images = train_images.shape[0]
    for epoch in range(1, epochs + 1):
        # Train one epoch: shuffled batches, each image flipped horizontally with probability 1/2.
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(num_images, generator=generator)
        loss_sum, num_batches = 0.0, 0
        for i in range(0, num_images, batch_size):
            idx = order[i : i + batch_size]
            x = train_images[idx]
            flip = torch.rand(idx.shape[0], generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            x = images_to_float(x.to(device))
            y = train_labels[idx].to(device)
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            num_batches += 1

        # Validate.
        val = _evaluate(model, val_images, val_labels, batch_size, device)
        metrics = {'train_loss': loss_sum / num_batches, 'val_loss': val['loss'], 'val_acc_mean': float(val['acc'].mean())}
        metrics.update({f'val_acc/{name}': float(acc) for name, acc in zip(attribute_names, val['acc'])})
        metrics['epoch_time_sec'] = time.perf_counter() - epoch_start
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        history.append(metrics)

    model.eval()
    return model, history

# ----------------------------------------------------------------------------

@torch.no_grad()
def extract(model: AttrNet, images: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features phi(x) as float64 (N, feature_dim) and attribute probabilities sigmoid(logits)
    as float64 (N, A), for uint8 images (N, 3, R, R). Runs in eval mode on the model's device."""
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError(f'expected uint8 images (N, 3, R, R), got {images.dtype} {tuple(images.shape)}')
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    features, probs = [], []
    for i in range(0, images.shape[0], batch_size):
        x = images_to_float(images[i : i + batch_size].to(device))
        phi = model.features(x)
        features.append(phi.to('cpu', torch.float64))
        probs.append(torch.sigmoid(model.head(phi)).to('cpu', torch.float64))
    model.train(was_training)
    num_attributes = model.head.out_features
    features = torch.cat(features).numpy() if features else np.zeros([0, model.feature_dim])
    probs = torch.cat(probs).numpy() if probs else np.zeros([0, num_attributes])
    return features, probs

def attribute_rates(probs: np.ndarray) -> np.ndarray:
    """Fraction of images classified as having each attribute: mean_i [p_ia > 0.5], shape (A,)."""
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f'probs must have shape (N, A), got {probs.shape}')
    return (probs > 0.5).mean(axis=0, dtype=np.float64)

# ----------------------------------------------------------------------------
