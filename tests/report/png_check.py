"""A small PNG reader for the browser tests (no Pillow): size and pixels of an 8-bit RGB/RGBA PNG."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # grey, RGB, grey+alpha, RGBA


def read_png(path: Path) -> np.ndarray:
    """Pixels as an array (height, width, channels) of uint8; 8-bit, non-interlaced PNGs only."""
    data = path.read_bytes()
    assert data[:8] == _SIGNATURE, f"{path} is not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None, "no IHDR chunk"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in _CHANNELS, header
    bpp = _CHANNELS[colour]
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "truncated image data"
    out = np.zeros((height, stride), dtype=np.uint8)
    prior = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:  # Sub
            arr = np.frombuffer(bytes(line), dtype=np.uint8).reshape(width, bpp).astype(np.int64)
            line = bytearray((np.cumsum(arr, axis=0) % 256).astype(np.uint8).tobytes())
        elif kind == 2:  # Up
            line = bytearray(
                ((np.frombuffer(bytes(line), np.uint8).astype(np.int64) + np.frombuffer(bytes(prior), np.uint8)) % 256)
                .astype(np.uint8)
                .tobytes()
            )
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prior[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prior[i]
                c = prior[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        out[y] = np.frombuffer(bytes(line), dtype=np.uint8)
        prior = line
    return out.reshape(height, width, bpp)


def colour_stats(pixels: np.ndarray) -> tuple[int, float]:
    """(distinct colours, share of pixels that differ from the most common colour, i.e. the background)."""
    flat = pixels[..., :3].reshape(-1, 3).astype(np.uint32)
    keys = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    return int(values.size), float(1.0 - counts.max() / keys.size)
