"""Shards: consecutive, equal ranges that cover every image once."""

from __future__ import annotations

from sweep.stages.shards import shard_ranges


def test_shard_ranges_cover_every_image_once_in_equal_shards():
    assert shard_ranges(10, 4) == ((0, 3), (3, 6), (6, 10))
    assert shard_ranges(3, 128) == ((0, 3),)
    assert shard_ranges(720, 128) == tuple((i, i + 120) for i in range(0, 720, 120))
    assert shard_ranges(0, 8) == ()
    for count in range(1, 60):
        for size in range(1, 12):
            ranges = shard_ranges(count, size)
            assert ranges[0][0] == 0 and ranges[-1][1] == count
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
            lengths = [stop - start for start, stop in ranges]
            assert max(lengths) <= size and max(lengths) - min(lengths) <= 1
            assert len(ranges) == -(-count // size)
