"""The garage as an occupancy grid in the ``map`` frame, its distance field, speed zones and the Nav2 map files.

Conventions follow ``nav_msgs/OccupancyGrid``: ``data[row, col]`` with rows along +y and columns along +x, cell (0, 0)
has its lower-left corner at ``origin_xy`` (map metres), values are 0 (free) or 100 (occupied). Anything outside the
grid counts as occupied.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np
import yaml

from ..geometry import point_in_polygon, polygon_area

FREE = 0
OCCUPIED = 100
OCCUPIED_THRESHOLD = 50
"""Cells at or above this value are treated as occupied (so a grid read back from a trinary map still works)."""

# Rasterisation is done in fixed point with this many fractional bits; polygons are shrunk by a couple of those
# units so that an obstacle edge lying exactly on a cell boundary does not claim the neighbouring cell.
_SHIFT = 10
_SHRINK_PX = 2.0 / (1 << _SHIFT)

_PGM_FREE = 254
_PGM_OCCUPIED = 0


class OccupancyError(ValueError):
    """Bad grid parameters, a malformed polygon or an unreadable map file."""


@dataclass
class OccupancyGrid:
    """A 2-D occupancy grid in the ``map`` frame.

    ``resolution_m`` is the cell edge in metres, ``origin_xy`` the map coordinates (m) of cell (0, 0)'s lower-left
    corner, ``data`` a uint8 array (height, width) holding ``FREE`` (0) or ``OCCUPIED`` (100).
    """

    resolution_m: float
    origin_xy: tuple
    data: np.ndarray

    def __post_init__(self):
        if not (math.isfinite(self.resolution_m) and self.resolution_m > 0.0):
            raise OccupancyError(f"resolution_m must be positive, got {self.resolution_m!r}")
        ox, oy = (float(v) for v in self.origin_xy)
        if not (math.isfinite(ox) and math.isfinite(oy)):
            raise OccupancyError(f"origin_xy must be finite, got {self.origin_xy!r}")
        self.origin_xy = (ox, oy)
        self.data = np.ascontiguousarray(self.data, dtype=np.uint8)
        if self.data.ndim != 2 or self.data.size == 0:
            raise OccupancyError(f"data must be a non-empty 2-D array, got shape {self.data.shape}")

    @property
    def width(self) -> int:
        """Number of columns (cells along x)."""
        return int(self.data.shape[1])

    @property
    def height(self) -> int:
        """Number of rows (cells along y)."""
        return int(self.data.shape[0])

    @property
    def size_m(self) -> tuple:
        """(sx, sy) extent of the grid in metres."""
        return self.width * self.resolution_m, self.height * self.resolution_m

    def world_to_cell(self, x: float, y: float) -> tuple:
        """(row, col) of the cell containing map point (x, y) m; may be out of bounds (check ``cell_in_bounds``)."""
        if not (math.isfinite(x) and math.isfinite(y)):
            raise OccupancyError(f"point must be finite, got ({x!r}, {y!r})")
        col = math.floor((x - self.origin_xy[0]) / self.resolution_m)
        row = math.floor((y - self.origin_xy[1]) / self.resolution_m)
        return int(row), int(col)

    def cell_to_world(self, row: int, col: int) -> tuple:
        """Map coordinates (x, y) m of the centre of cell (row, col)."""
        return (self.origin_xy[0] + (col + 0.5) * self.resolution_m,
                self.origin_xy[1] + (row + 0.5) * self.resolution_m)

    def cell_in_bounds(self, row: int, col: int) -> bool:
        return 0 <= row < self.height and 0 <= col < self.width

    def in_bounds(self, x: float, y: float) -> bool:
        """Whether map point (x, y) m lies on the grid."""
        return self.cell_in_bounds(*self.world_to_cell(x, y))

    def cell_occupied(self, row: int, col: int) -> bool:
        """Whether cell (row, col) is occupied; cells off the grid are."""
        if not self.cell_in_bounds(row, col):
            return True
        return bool(self.data[row, col] >= OCCUPIED_THRESHOLD)

    def is_occupied(self, x: float, y: float) -> bool:
        """Whether map point (x, y) m falls in an occupied cell; points off the grid are occupied."""
        return self.cell_occupied(*self.world_to_cell(x, y))

    def occupied_mask(self) -> np.ndarray:
        """Boolean (height, width) array, True where occupied."""
        return self.data >= OCCUPIED_THRESHOLD


def _as_polygon(poly) -> np.ndarray:
    p = np.asarray(poly, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3:
        raise OccupancyError(f"a polygon needs at least 3 (x, y) vertices, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise OccupancyError("polygon has non-finite vertices")
    return p


def _shrink(poly_px: np.ndarray, amount: float) -> np.ndarray:
    """Move every vertex ``amount`` into the polygon, along the sum of its two edges' inward normals."""
    area = polygon_area(poly_px)
    if area == 0.0:
        return poly_px  # degenerate: nothing to shrink into, keep it as a sliver so its cells still count
    edges = np.roll(poly_px, -1, axis=0) - poly_px
    lengths = np.linalg.norm(edges, axis=1, keepdims=True)
    normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1) / np.where(lengths > 0, lengths, 1.0)
    if area < 0:  # clockwise: the left normal points outwards
        normals = -normals
    bis = normals + np.roll(normals, 1, axis=0)
    norms = np.linalg.norm(bis, axis=1, keepdims=True)
    return poly_px + amount * bis / np.where(norms > 0, norms, 1.0)


def _edge_cells(a: np.ndarray, b: np.ndarray) -> tuple:
    """(rows, cols) of every cell whose interior the segment a-b crosses; a, b in cell units (corner at 0)."""
    d = b - a
    ts = [np.array([0.0, 1.0])]
    for k in range(2):
        if d[k] != 0.0:
            lo, hi = sorted((a[k], b[k]))
            lines = np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=float)
            ts.append((lines - a[k]) / d[k])
    t = np.unique(np.clip(np.concatenate(ts), 0.0, 1.0))
    mid = 0.5 * (t[:-1] + t[1:]) if len(t) > 1 else t
    pts = a + np.outer(mid, d)
    return np.floor(pts[:, 1]).astype(np.int64), np.floor(pts[:, 0]).astype(np.int64)


def _rasterise(data: np.ndarray, poly: np.ndarray, origin_xy, resolution_m: float) -> None:
    """Mark in ``data`` every cell whose interior the polygon (map metres) overlaps."""
    uv = (poly - np.asarray(origin_xy, float)) / resolution_m  # cell units, cell (0, 0) spans [0, 1)^2
    uv = _shrink(uv, _SHRINK_PX)
    # OpenCV puts pixel centres on integers, so the half-cell offset turns cell corners into pixel coordinates.
    fixed = np.round((uv - 0.5) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(data, [fixed.reshape(-1, 1, 2)], OCCUPIED, lineType=cv2.LINE_8, shift=_SHIFT)
    # fillPoly decides per scanline at the pixel centre, so a corner of a cell clipped by a slanted edge can be
    # missed; adding the cells each edge passes through makes the result conservative.
    h, w = data.shape
    for a, b in zip(uv, np.roll(uv, -1, axis=0)):
        rows, cols = _edge_cells(a, b)
        ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        data[rows[ok], cols[ok]] = OCCUPIED


def from_polygons(size_xy: Sequence[float], resolution_m: float, polygons: Iterable, origin_xy=(0.0, 0.0)
                  ) -> OccupancyGrid:
    """A grid of ``size_xy`` (sx, sy) metres, with every cell that any polygon ((N, 2), map metres) overlaps occupied.

    The grid has ``ceil(sx / resolution_m)`` columns and ``ceil(sy / resolution_m)`` rows. Overlapping a cell by any
    area occupies it (overlaps thinner than about 1e-3 of a cell aside); touching it only on its boundary does not.
    OpenCV's scanline rounding can add the odd cell next to an obstacle vertex, which errs on the safe side.
    """
    sx, sy = (float(v) for v in size_xy)
    if not (math.isfinite(resolution_m) and resolution_m > 0.0):
        raise OccupancyError(f"resolution_m must be positive, got {resolution_m!r}")
    if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0.0 and sy > 0.0):
        raise OccupancyError(f"size_xy must be positive, got {size_xy!r}")
    # A small tolerance keeps 40.0 / 0.05 from becoming 801 columns through rounding noise.
    width = max(1, math.ceil(sx / resolution_m - 1e-6))
    height = max(1, math.ceil(sy / resolution_m - 1e-6))
    data = np.zeros((height, width), dtype=np.uint8)
    for poly in polygons:
        _rasterise(data, _as_polygon(poly), origin_xy, resolution_m)
    return OccupancyGrid(resolution_m=float(resolution_m), origin_xy=tuple(origin_xy), data=data)


def occupancy_from_garage(garage, resolution_m: float = 0.05) -> OccupancyGrid:
    """The garage's static obstacles and keep-out zones rasterised over its extent ``garage.size_m``.

    ``garage`` needs ``size_m`` (sx, sy) m, ``static_obstacles()`` (items with ``.polygon`` (N, 2) map m) and
    ``keep_out_polygons()`` (list of (N, 2) map m). Parked cars count when the garage lists them as static obstacles.
    """
    polys = [o.polygon for o in garage.static_obstacles()]
    polys.extend(garage.keep_out_polygons())
    return from_polygons(garage.size_m, resolution_m, polys)


def distance_field(grid: OccupancyGrid) -> np.ndarray:
    """Float array (height, width): metres from each cell centre to the nearest occupied cell centre (0 if occupied).

    The map border counts as occupied (a ring of occupied cells just outside the grid), so the field also measures
    the distance to the edge of the map. Exact Euclidean distance (OpenCV DIST_MASK_PRECISE).
    """
    free = np.zeros((grid.height + 2, grid.width + 2), dtype=np.uint8)
    free[1:-1, 1:-1] = np.where(grid.occupied_mask(), 0, 1)
    dist = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist[1:-1, 1:-1].astype(float) * grid.resolution_m


def speed_limit_at(garage_zones: Iterable, x: float, y: float, default: float) -> float:
    """The speed limit (m/s) at map point (x, y) m: the lowest ``max_speed_mps`` of the ``kind == 'speed_limit'``
    zones whose ``polygon`` contains the point, and never above ``default``. Other zone kinds are ignored."""
    limit = default
    for zone in garage_zones:
        if getattr(zone, "kind", None) != "speed_limit":
            continue
        if point_in_polygon((x, y), zone.polygon):
            limit = min(limit, float(zone.max_speed_mps))
    return limit


def write_map_server(grid: OccupancyGrid, pgm_path: str, yaml_path: str, image_name: str) -> None:
    """Write the Nav2 ``map_server`` pair: a binary PGM (P5; occupied 0 = black, free 254) and its YAML.

    The PGM's first row is the map's top (largest y), as map_server expects. ``image_name`` is written into the YAML
    as given, normally the PGM's file name relative to the YAML.
    """
    pixels = np.where(grid.occupied_mask(), _PGM_OCCUPIED, _PGM_FREE).astype(np.uint8)[::-1]
    header = f"P5\n{grid.width} {grid.height}\n255\n".encode("ascii")
    with open(pgm_path, "wb") as fh:
        fh.write(header)
        fh.write(np.ascontiguousarray(pixels).tobytes())
    meta = {
        "image": image_name,
        "mode": "trinary",
        "resolution": float(grid.resolution_m),
        "origin": [float(grid.origin_xy[0]), float(grid.origin_xy[1]), 0.0],
        "negate": 0,
        "occupied_thresh": 0.65,
        "free_thresh": 0.25,
    }
    with open(yaml_path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(meta, fh, sort_keys=False, default_flow_style=None)


def _read_pgm(path: str) -> np.ndarray:
    with open(path, "rb") as fh:
        raw = fh.read()
    tokens = []
    pos = 0
    # Header: magic, width, height, maxval, separated by whitespace, with optional '#' comments.
    while len(tokens) < 4:
        while pos < len(raw) and raw[pos:pos + 1].isspace():
            pos += 1
        if raw[pos:pos + 1] == b"#":
            pos = raw.index(b"\n", pos) + 1
            continue
        start = pos
        while pos < len(raw) and not raw[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise OccupancyError(f"{path}: truncated PGM header")
        tokens.append(raw[start:pos])
    if tokens[0] != b"P5":
        raise OccupancyError(f"{path}: not a binary PGM (P5)")
    width, height, maxval = (int(t) for t in tokens[1:])
    if maxval > 255:
        raise OccupancyError(f"{path}: 16-bit PGM is not supported")
    body = raw[pos + 1:pos + 1 + width * height]
    if len(body) != width * height:
        raise OccupancyError(f"{path}: PGM body has {len(body)} bytes, expected {width * height}")
    return np.frombuffer(body, dtype=np.uint8).reshape(height, width)


def read_map_server(yaml_path: str) -> OccupancyGrid:
    """Read a map_server YAML + PGM pair back into an ``OccupancyGrid`` (trinary thresholds; unknown becomes free).

    Pixels whose occupancy probability ``(255 - p) / 255`` (inverted when ``negate``) exceeds ``occupied_thresh``
    are occupied.
    """
    try:
        with open(yaml_path, encoding="utf-8") as fh:
            meta = yaml.safe_load(fh)
        image = os.path.join(os.path.dirname(os.path.abspath(yaml_path)), meta["image"])
        pixels = _read_pgm(image)
        res = float(meta["resolution"])
        origin = (float(meta["origin"][0]), float(meta["origin"][1]))
        occ_thresh = float(meta.get("occupied_thresh", 0.65))
        negate = bool(meta.get("negate", 0))
    except (OSError, KeyError, TypeError, IndexError, ValueError, yaml.YAMLError) as exc:
        raise OccupancyError(f"cannot read map {yaml_path}: {exc}") from exc
    p = pixels.astype(float) / 255.0
    occ_prob = p if negate else 1.0 - p
    data = np.where(occ_prob > occ_thresh, OCCUPIED, FREE).astype(np.uint8)[::-1]
    return OccupancyGrid(resolution_m=res, origin_xy=origin, data=data)
