"""The two ways to measure how a classifier's prediction moves with each DCT coefficient.

Both perturb the model's own input: the image after the classifier's resize and crop, as
float RGB in [0, 1], before the family's input representation makes its input from them
(`sweep.inputs.base.InputRepresentation`: normalised pixels, or DCT planes).
Coefficients are those of JPEG's blockwise DCT of that input in JFIF YCbCr (sweep/dct.py),
blocks aligned with its top-left corner; the blocks of a chroma channel lie on the
subsampled chroma plane (4:2:0: each covers 16x16 pixels, its samples replicated over 2x2
pixels). Blocks that do not fit whole at the right or bottom edge are left out.

Both give, per image, channel (Y, Cb, Cr) and frequency (i, j), the mean over blocks of a
statistic of the change of the predicted class probabilities p, per unit of coefficient:

    clean_prob  |d p_c*| / eps          c* the class the model predicts on the clean image
    l1          sum_k |d p_k| / eps     the L1 change over all classes

* `finite` (the reference study's procedure): one coefficient of one block moves by eps;
  the perturbed images are batched and kept in floating point, with no rounding or clipping.
  One forward pass per (block, channel, frequency).
* `gradient`: the first-order equivalent. The blockwise DCT is linear and orthonormal, so the
  derivative of an output with respect to coefficient (block, channel, i, j) is the blockwise
  DCT of its gradient with respect to the YCbCr pixels (a chroma gradient first goes through
  the adjoint of the upsampling: the sum over each 2x2 box). One backward pass per output
  scalar gives every block and frequency at once: one for clean_prob, one per class for l1.

As eps goes to 0 the finite statistic tends to the gradient's (tests/sensitivity/ check it
in float64).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sweep.dct import BLOCK, CHROMA_FACTORS, basis_images, block_dct, upsample, ycbcr_to_rgb
from sweep.sensitivity.options import CHANNELS, STATISTICS

FREQUENCIES = BLOCK * BLOCK


@dataclass(frozen=True)
class Classifier:
    """A classifier in eval mode and the making of its input from pixels.

    `prepare` maps (B, 3, S, S) RGB in [0, 1] to the module's input, differentiably (the
    family's `InputRepresentation.from_pixels`: a normalisation for RGB families, the DCT
    planes for those that read coefficients); `module` maps that to (B, K) logits. Its
    parameters' dtype and device are those of the measurement.
    """

    module: torch.nn.Module
    prepare: Callable[[torch.Tensor], Any]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def probabilities(
        self, pixels: torch.Tensor, delta: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class probabilities of (B, 3, S, S) RGB in [0, 1] plus an optional RGB delta."""
        if delta is not None:
            pixels = pixels + delta
        return torch.softmax(self.module(self.prepare(pixels)), dim=-1)


@dataclass
class Measured:
    """Per-image maps of each statistic, (n_images, 3, 8, 8), and the passes they took."""

    maps: dict[str, np.ndarray]
    passes: int
    blocks: dict[str, int]  # blocks measured per image, per channel


def block_grid(size: int, factor: int) -> int:
    """Whole 8x8 blocks per side of a channel's plane (chroma planes are size / factor)."""
    return size // factor // BLOCK


def check_statistics(statistics: Sequence[str]) -> None:
    unknown = [name for name in statistics if name not in STATISTICS]
    if unknown or not statistics:
        raise ValueError(f"statistics {list(statistics)}: choose from {list(STATISTICS)}")


def _change(statistic: str, probs: torch.Tensor, clean: torch.Tensor, winner: int) -> torch.Tensor:
    """The statistic's absolute change of each perturbed row of `probs` against `clean`."""
    if statistic == "clean_prob":
        return (probs[:, winner] - clean[winner]).abs()
    return (probs - clean).abs().sum(dim=1)


def _sampled_blocks(rows: int, blocks: int | None, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of the blocks to perturb: all, or a seeded sample without replacement."""
    total = rows * rows
    if blocks is None or blocks >= total:
        return np.arange(total)
    return np.sort(rng.choice(total, size=blocks, replace=False))


def _batches(items: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@torch.no_grad()
def finite_maps(
    classifier: Classifier,
    images: torch.Tensor,
    statistics: Sequence[str],
    epsilon: float,
    chroma_subsampling: str,
    blocks: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> Measured:
    """The study's procedure: every (sampled) block, channel and frequency moved by epsilon.

    Args:
        classifier: The model and its input normalisation.
        images: (n, 3, S, S) RGB in [0, 1], the model's input size.
        statistics: Names from STATISTICS.
        epsilon: The coefficient change, in JPEG's 0-255 pixel units.
        chroma_subsampling: "4:4:4" or "4:2:0": the grid of the chroma blocks.
        blocks: Blocks per image and channel, a seeded sample; None for all.
        seed: Seed of the block sample (image k, channel c draws from [seed, k, c]).
        batch_size: Perturbed images per forward pass (whole blocks of 64 frequencies, so at
            least 64).
    """
    check_statistics(statistics)
    dtype, device = classifier.dtype, classifier.device
    images = images.to(dtype=dtype, device=device)
    size = images.shape[-1]
    factor = CHROMA_FACTORS[chroma_subsampling]
    to_rgb = ycbcr_to_rgb(dtype, device)
    basis = basis_images(dtype, device) * epsilon / 255.0  # (64, 8, 8), [0, 1] pixel units
    # Per channel: the factor of its grid, and (64, 3, 8f, 8f) the RGB change of each of its
    # coefficients moved by epsilon (a chroma pattern replicated over f x f pixels).
    factors = [1 if channel == 0 else factor for channel in range(3)]
    patterns = [
        to_rgb[:, channel].view(1, 3, 1, 1) * upsample(basis, factors[channel])[:, None]
        for channel in range(3)
    ]
    per_batch = max(1, batch_size // FREQUENCIES)
    maps = {name: np.zeros((len(images), 3, BLOCK, BLOCK)) for name in statistics}
    counts, passes = {}, 0
    for index, image in enumerate(images):
        clean = classifier.probabilities(image[None])[0]
        winner = int(clean.argmax())
        for channel, pattern in enumerate(patterns):
            side = BLOCK * factors[channel]
            rows = block_grid(size, factors[channel])
            rng = np.random.default_rng([seed, index, channel])
            chosen = _sampled_blocks(rows, blocks, rng)
            counts[CHANNELS[channel]] = len(chosen)
            sums = {name: torch.zeros(FREQUENCIES, dtype=dtype, device=device) for name in maps}
            for group in _batches(chosen, per_batch):
                delta = torch.zeros(
                    (len(group) * FREQUENCIES, 3, size, size), dtype=dtype, device=device
                )
                for slot, block in enumerate(group):
                    top, left = (block // rows) * side, (block % rows) * side
                    rows_of_slot = slice(slot * FREQUENCIES, (slot + 1) * FREQUENCIES)
                    delta[rows_of_slot, :, top : top + side, left : left + side] = pattern
                probs = classifier.probabilities(image[None], delta)
                passes += len(delta)
                for name in maps:
                    change = _change(name, probs, clean, winner) / epsilon
                    sums[name] += change.view(len(group), FREQUENCIES).sum(dim=0)
            for name in maps:
                mean = sums[name] / len(chosen)
                maps[name][index, channel] = mean.view(BLOCK, BLOCK).cpu().double().numpy()
    return Measured(maps, passes, counts)


def gradient_maps(
    classifier: Classifier,
    images: torch.Tensor,
    statistics: Sequence[str],
    chroma_subsampling: str,
    batch_size: int = 32,
) -> Measured:
    """The first-order equivalent of `finite_maps` over every block (see the module docs).

    Args:
        classifier: The model and its input normalisation (its batch entries independent:
            eval mode).
        images: (n, 3, S, S) RGB in [0, 1], the model's input size.
        statistics: Names from STATISTICS.
        chroma_subsampling: "4:4:4" or "4:2:0".
        batch_size: Images per forward pass.
    """
    check_statistics(statistics)
    dtype, device = classifier.dtype, classifier.device
    size = images.shape[-1]
    factor = CHROMA_FACTORS[chroma_subsampling]
    to_rgb = ycbcr_to_rgb(dtype, device)
    luma_side = block_grid(size, 1) * BLOCK
    chroma_side = block_grid(size, factor) * BLOCK
    maps = {name: np.zeros((len(images), 3, BLOCK, BLOCK)) for name in statistics}
    passes = 0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(dtype=dtype, device=device)
        count = len(batch)
        # Changes of the YCbCr planes, in 0-255 units; the chroma planes on their own grid.
        luma = torch.zeros((count, size, size), dtype=dtype, device=device, requires_grad=True)
        # A chroma plane covers the image as JPEG's does: ceil(S / f) samples, the last
        # one cut at the edge when S is odd.
        chroma_size = -(-size // factor)
        chroma = torch.zeros(
            (count, 2, chroma_size, chroma_size), dtype=dtype, device=device, requires_grad=True
        )
        full_chroma = upsample(chroma, factor)[..., :size, :size]
        planes = torch.cat([luma[:, None], full_chroma], dim=1)  # (B, 3, S, S)
        delta = torch.einsum("rc,bchw->brhw", to_rgb, planes) / 255.0
        with torch.enable_grad():
            probs = classifier.probabilities(batch, delta)
        winners = probs.detach().argmax(dim=1)
        outputs = {
            "clean_prob": [probs.gather(1, winners[:, None]).sum()],
            "l1": [probs[:, k].sum() for k in range(probs.shape[1])],
        }
        wanted = [(name, output) for name in statistics for output in outputs[name]]
        sums = {name: torch.zeros((count, 3, BLOCK, BLOCK), dtype=dtype) for name in statistics}
        for number, (name, output) in enumerate(wanted):
            last = number == len(wanted) - 1
            grad_luma, grad_chroma = torch.autograd.grad(
                output, (luma, chroma), retain_graph=not last
            )
            passes += 1
            luma_coefficients = block_dct(grad_luma[:, :luma_side, :luma_side]).abs()
            chroma_coefficients = block_dct(grad_chroma[..., :chroma_side, :chroma_side]).abs()
            sums[name][:, 0] += luma_coefficients.mean(dim=(1, 2)).detach().cpu()
            sums[name][:, 1:] += chroma_coefficients.mean(dim=(2, 3)).detach().cpu()
        for name in statistics:
            maps[name][start : start + count] = sums[name].double().numpy()
    blocks = {"Y": block_grid(size, 1) ** 2, "Cb": block_grid(size, factor) ** 2}
    blocks["Cr"] = blocks["Cb"]
    return Measured(maps, passes, blocks)
