"""JPEG's transform, in torch: JFIF YCbCr and the orthonormal 8x8 DCT-II, block by block.

JPEG (ITU-T T.81, A.3.3) codes each 8x8 block with F(u, v) = 1/4 C(u) C(v) sum f(x, y)
cos((2x+1)u pi/16) cos((2y+1)v pi/16), C(0) = 1/sqrt(2), C(u > 0) = 1: the orthonormal
two-dimensional DCT-II, `D X D^T` with the matrix `dct_matrix()` (scipy's dctn(norm="ortho")
on 8x8). Pixels are in JPEG's 0-255 scale; the level shift by 128 changes only the DC term
and cancels in every difference taken here. Colour is JFIF's (ITU-T T.871, section 7).

Frequencies are indexed (i, j): i the vertical frequency (row of the coefficient block), j the
horizontal one; (0, 0) is DC. A unit change of one coefficient moves pixels by at most
a(i) a(j) <= 0.25 (a = sqrt(1/8) for 0, 1/2 otherwise).
"""

from __future__ import annotations

import math

import torch

BLOCK = 8
# JFIF RGB -> YCbCr (T.871 eq. 7-9), without the +128 offset of Cb and Cr.
RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
# Chroma subsampling -> the factor by which each chroma plane is smaller, per axis. Upsampling
# replicates each chroma sample over its factor x factor pixels (a box filter, whose adjoint is
# the sum over the box).
CHROMA_FACTORS = {"4:4:4": 1, "4:2:0": 2}


def dct_matrix(dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """The 8x8 orthonormal DCT-II matrix D: D[u, x] = a(u) cos((2x + 1) u pi / 16)."""
    u = torch.arange(BLOCK, dtype=torch.float64).unsqueeze(1)
    x = torch.arange(BLOCK, dtype=torch.float64).unsqueeze(0)
    scale = torch.full((BLOCK, 1), math.sqrt(2 / BLOCK), dtype=torch.float64)
    scale[0] = math.sqrt(1 / BLOCK)
    return (scale * torch.cos((2 * x + 1) * u * math.pi / (2 * BLOCK))).to(
        device=device, dtype=dtype
    )


def ycbcr_to_rgb(dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """(3, 3) matrix taking (Y, Cb - 128, Cr - 128) to (R, G, B): the exact inverse of JFIF's."""
    forward = torch.tensor(RGB_TO_YCBCR, dtype=torch.float64)
    return torch.linalg.inv(forward).to(device=device, dtype=dtype)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in 0-255 -> (..., 3, H, W) Y, Cb, Cr in 0-255 (JFIF, +128 offsets)."""
    matrix = torch.tensor(RGB_TO_YCBCR, dtype=rgb.dtype, device=rgb.device)
    ycc = torch.einsum("cd,...dhw->...chw", matrix, rgb)
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=rgb.dtype, device=rgb.device)
    return ycc + offset.view(3, 1, 1)


def blocks_of(plane: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., H/8, W/8, 8, 8) blocks; H and W must be multiples of 8."""
    *lead, height, width = plane.shape
    if height % BLOCK or width % BLOCK:
        raise ValueError(f"a {height}x{width} plane does not split into 8x8 blocks")
    blocks = plane.reshape(*lead, height // BLOCK, BLOCK, width // BLOCK, BLOCK)
    return blocks.transpose(-3, -2)


def plane_of(blocks: torch.Tensor) -> torch.Tensor:
    """(..., H/8, W/8, 8, 8) blocks -> (..., H, W): the inverse of `blocks_of`."""
    *lead, rows, cols, _, _ = blocks.shape
    return blocks.transpose(-3, -2).reshape(*lead, rows * BLOCK, cols * BLOCK)


def block_dct(plane: torch.Tensor) -> torch.Tensor:
    """Blockwise orthonormal DCT-II: (..., H, W) -> (..., H/8, W/8, 8, 8) coefficients [i, j]."""
    d = dct_matrix(plane.dtype, plane.device)
    return d @ blocks_of(plane) @ d.T


def block_idct(coefficients: torch.Tensor) -> torch.Tensor:
    """The inverse (and adjoint) of `block_dct`: (..., H/8, W/8, 8, 8) -> (..., H, W)."""
    d = dct_matrix(coefficients.dtype, coefficients.device)
    return plane_of(d.T @ coefficients @ d)


def basis_images(dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """(64, 8, 8): the pixel pattern of a unit coefficient (i, j), at index 8 i + j."""
    d = dct_matrix(dtype, device)
    return torch.einsum("ix,jy->ijxy", d, d).reshape(BLOCK * BLOCK, BLOCK, BLOCK)


def upsample(plane: torch.Tensor, factor: int) -> torch.Tensor:
    """A chroma plane at full resolution: each sample repeated over factor x factor pixels."""
    if factor == 1:
        return plane
    return plane.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
