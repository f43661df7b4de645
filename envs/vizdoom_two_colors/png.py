"""A minimal PNG encoder (8-bit RGB / RGBA), so the scenario needs no imaging library.

ZDoom reads PNG lumps as sprites and textures; the ``grAb`` chunk carries a sprite's
offsets (where its origin sits), which ZDoom honours as it does Doom's patch offsets.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["encode_png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(image: np.ndarray, offset: tuple[int, int] | None = None) -> bytes:
    """Encode an ``(H, W, 3)`` or ``(H, W, 4)`` uint8 array as PNG bytes.

    ``offset`` = ``(left, top)`` writes a ZDoom ``grAb`` chunk: the pixel that lands on the
    actor's position (sprites: ``(width // 2, height)`` stands the picture on the floor).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(
            f"image must be uint8 of shape (H, W, 3|4), got {image.dtype} {image.shape}"
        )
    height, width, channels = image.shape
    colour_type = 2 if channels == 3 else 6  # truecolour / truecolour with alpha
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    # Each scanline starts with filter type 0 (none).
    raw = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header)]
    if offset is not None:
        parts.append(_chunk(b"grAb", struct.pack(">ii", *offset)))
    parts += [_chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)), _chunk(b"IEND", b"")]
    return b"".join(parts)
