"""The sample of a split's images that the distortion stage measures."""

from __future__ import annotations

from sweep.distortion.sampling import ALL, sample_identity, sampled_indices


def test_the_sample_is_seeded_sorted_and_without_repeats():
    drawn = sampled_indices(25_250, 1000, 0)
    assert len(drawn) == len(set(drawn)) == 1000 and list(drawn) == sorted(drawn)
    assert 0 <= drawn[0] and drawn[-1] < 25_250
    assert sampled_indices(25_250, 1000, 0) == drawn
    assert sampled_indices(25_250, 1000, 1) != drawn


def test_a_sample_as_large_as_the_split_or_all_is_every_image():
    assert sampled_indices(9, None, 0) == sampled_indices(9, 9, 4) == tuple(range(9))
    assert sampled_indices(9, 1000, 0) == tuple(range(9))
    assert sample_identity(9, 1000, 7) == sample_identity(9, None, 7) == {"images": ALL, "seed": 7}
    assert sample_identity(25_250, 1000, 2) == {"images": 1000, "seed": 2}
