"""Tiny RGB drawing helpers for the grid worlds (no GUI, no matplotlib)."""

from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]

BACKGROUND: Color = (32, 32, 40)
FLOOR: Color = (200, 200, 205)
WALL: Color = (70, 70, 80)
AGENT: Color = (40, 110, 230)
GOAL: Color = (40, 170, 70)
WRONG: Color = (200, 60, 60)
KEY: Color = (235, 190, 30)
DOOR: Color = (150, 90, 40)


def draw_grid(colors: np.ndarray, cell_px: int, gap_px: int = 1) -> np.ndarray:
    """Turn an ``(rows, cols, 3)`` array of cell colours into an RGB image with thin gaps.

    Returns a new ``uint8`` array of shape ``(rows * cell_px, cols * cell_px, 3)``.
    """
    image = np.repeat(np.repeat(colors.astype(np.uint8), cell_px, axis=0), cell_px, axis=1)
    if gap_px and cell_px > 2 * gap_px:
        image[::cell_px, :] = BACKGROUND
        image[:, ::cell_px] = BACKGROUND
    return image


def draw_dot(image: np.ndarray, row: int, col: int, cell_px: int, color: Color) -> None:
    """Paint a filled disc in cell ``(row, col)`` of an image made by :func:`draw_grid`."""
    centre = (cell_px - 1) / 2.0
    yy, xx = np.mgrid[:cell_px, :cell_px]
    disc = (yy - centre) ** 2 + (xx - centre) ** 2 <= (0.35 * cell_px) ** 2
    patch = image[row * cell_px : (row + 1) * cell_px, col * cell_px : (col + 1) * cell_px]
    patch[disc] = color
