"""Input representations: what a classifier reads, made from the stored image files.

A model family chooses its representation (`ModelFamily.input_representation`): RGB pixels
(`rgb.py`, every family by default), JPEG's DCT coefficient planes (`dct_planes.py`, the
jpeg2dct models) or DCTNet's frequency channels (`frequency_channels.py`). The contract is in
`base.py`; the coefficient layout and its two sources (a JPEG file, or pixels) in
`coefficients.py`.
"""
