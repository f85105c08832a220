"""Occupancy grid: indexing, conservative rasterisation, distance field, speed zones and the map_server files."""
from __future__ import annotations

import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml

from mobicharge_robot.core.geometry import Pose2D, rect_polygon
from mobicharge_robot.core.navigation.occupancy import (FREE, OCCUPIED, OccupancyError, OccupancyGrid, distance_field,
                                             from_polygons, occupancy_from_garage, read_map_server, speed_limit_at,
                                             write_map_server)


def _cell_square(grid: OccupancyGrid, row: int, col: int) -> np.ndarray:
    r = grid.resolution_m
    x0 = grid.origin_xy[0] + col * r
    y0 = grid.origin_xy[1] + row * r
    return np.array([[x0, y0], [x0 + r, y0], [x0 + r, y0 + r], [x0, y0 + r]], dtype=np.float32)


def test_indexing_round_trip_and_bounds():
    grid = OccupancyGrid(0.1, (-1.0, 2.0), np.zeros((30, 50), np.uint8))
    assert (grid.width, grid.height) == (50, 30)
    assert grid.world_to_cell(-1.0, 2.0) == (0, 0)
    assert grid.world_to_cell(-0.95, 2.31) == (3, 0)
    assert grid.world_to_cell(-1.01, 2.0) == (0, -1)
    x, y = grid.cell_to_world(3, 7)
    assert x == pytest.approx(-1.0 + 0.75) and y == pytest.approx(2.35)
    assert grid.world_to_cell(x, y) == (3, 7)
    assert grid.in_bounds(3.99, 4.99) and not grid.in_bounds(4.0, 3.0) and not grid.in_bounds(0.0, 1.99)
    # Off the map counts as occupied.
    assert grid.is_occupied(-2.0, 3.0) and not grid.is_occupied(0.0, 3.0)
    with pytest.raises(OccupancyError):
        grid.world_to_cell(float("nan"), 0.0)


def test_axis_aligned_rectangle_occupies_exactly_its_cells():
    grid = from_polygons((2.0, 1.0), 0.1, [np.array([[0.3, 0.2], [0.8, 0.2], [0.8, 0.6], [0.3, 0.6]])])
    assert (grid.width, grid.height) == (20, 10)
    expected = np.zeros((10, 20), bool)
    expected[2:6, 3:8] = True  # an edge on a cell boundary does not claim the neighbour
    np.testing.assert_array_equal(grid.occupied_mask(), expected)
    assert set(np.unique(grid.data)) == {FREE, OCCUPIED}


def test_rasterisation_is_conservative_and_tight():
    """Every cell a (rotated) rectangle overlaps is occupied; an extra cell is only ever next to an overlapped one."""
    rng = np.random.default_rng(7)
    res = 0.1
    extra_total = overlapped_total = 0
    for _ in range(40):
        centre = Pose2D(rng.uniform(0.4, 1.6), rng.uniform(0.4, 1.6), rng.uniform(-math.pi, math.pi))
        length, width = rng.uniform(0.03, 0.8), rng.uniform(0.03, 0.3)
        grid = from_polygons((2.0, 2.0), res, [rect_polygon(centre, length, width)])
        # The rasteriser may ignore overlaps thinner than 1e-3 of a cell, so "must be occupied" uses a rectangle
        # shrunk by a hundredth of a cell, and "may be occupied" the rectangle itself.
        inner = rect_polygon(centre, length - 0.02 * res, width - 0.02 * res).astype(np.float32)
        outer = rect_polygon(centre, length, width).astype(np.float32)
        must = np.zeros((grid.height, grid.width), bool)
        may = np.zeros_like(must)
        for row in range(grid.height):
            for col in range(grid.width):
                square = _cell_square(grid, row, col)
                must[row, col] = cv2.intersectConvexConvex(square, inner)[0] > 0.0
                may[row, col] = cv2.intersectConvexConvex(square, outer)[0] > 0.0
        occupied = grid.occupied_mask()
        assert not np.any(must & ~occupied), "a cell the obstacle overlaps is free"
        near = cv2.dilate(may.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert not np.any(occupied & ~near), "an occupied cell is more than one cell from the obstacle"
        extra_total += int(np.sum(occupied & ~may))
        overlapped_total += int(np.sum(may))
    assert extra_total < 0.05 * overlapped_total


def test_non_convex_polygon_keeps_its_notch_free():
    l_shape = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.4], [0.4, 0.4], [0.4, 1.0], [0.0, 1.0]]) + 0.5
    grid = from_polygons((2.0, 2.0), 0.1, [l_shape])
    assert grid.is_occupied(0.55, 1.45) and grid.is_occupied(1.45, 0.55)
    assert not grid.is_occupied(1.2, 1.2)  # inside the notch
    assert grid.occupied_mask().sum() == 64  # 100 cells of the square minus the 6 x 6 notch


def test_bad_inputs_raise_typed_errors():
    with pytest.raises(OccupancyError):
        from_polygons((1.0, 1.0), 0.0, [])
    with pytest.raises(OccupancyError):
        from_polygons((1.0, -1.0), 0.1, [])
    with pytest.raises(OccupancyError):
        from_polygons((1.0, 1.0), 0.1, [np.array([[0.0, 0.0], [1.0, 1.0]])])
    with pytest.raises(OccupancyError):
        from_polygons((1.0, 1.0), 0.1, [np.array([[0.0, 0.0], [1.0, np.nan], [0.0, 1.0]])])


def test_distance_field_measures_to_obstacles_and_map_edge():
    data = np.zeros((21, 41), np.uint8)
    data[10, 20] = OCCUPIED
    grid = OccupancyGrid(0.05, (0.0, 0.0), data)
    field = distance_field(grid)
    assert field.shape == (21, 41)
    assert field[10, 20] == 0.0
    assert field[10, 23] == pytest.approx(0.15, abs=1e-6)
    assert field[14, 23] == pytest.approx(0.25, abs=1e-6)  # 3-4-5 triangle
    # The ring outside the map is occupied: the corner cell is one cell from it.
    assert field[0, 0] == pytest.approx(0.05, abs=1e-6)
    assert field[10, 5] == pytest.approx(0.30, abs=1e-6)


def test_speed_limit_takes_the_lowest_zone_containing_the_point():
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    zones = [SimpleNamespace(kind="speed_limit", polygon=square, max_speed_mps=0.5),
             SimpleNamespace(kind="speed_limit", polygon=square * 0.5, max_speed_mps=0.3),
             SimpleNamespace(kind="keep_out", polygon=square * 0.25)]
    assert speed_limit_at(zones, 1.0, 1.0, 1.0) == pytest.approx(0.3)
    assert speed_limit_at(zones, 3.0, 3.0, 1.0) == pytest.approx(0.5)
    assert speed_limit_at(zones, 5.0, 3.0, 1.0) == pytest.approx(1.0)
    assert speed_limit_at(zones, 3.0, 3.0, 0.4) == pytest.approx(0.4)
    assert speed_limit_at([], 3.0, 3.0, 0.8) == pytest.approx(0.8)


def test_occupancy_from_garage_uses_obstacles_and_keep_out_zones():
    pillar = SimpleNamespace(polygon=rect_polygon(Pose2D(1.0, 1.0), 0.4, 0.4))
    keep_out = rect_polygon(Pose2D(3.0, 1.0), 1.0, 1.0)
    garage = SimpleNamespace(size_m=(4.0, 2.0), static_obstacles=lambda: [pillar], keep_out_polygons=lambda: [keep_out])
    grid = occupancy_from_garage(garage, 0.05)
    assert (grid.width, grid.height) == (80, 40)
    assert grid.is_occupied(1.0, 1.0) and grid.is_occupied(3.4, 1.4)
    assert not grid.is_occupied(2.0, 1.0) and not grid.is_occupied(1.0, 1.5)
    assert grid.occupied_mask().sum() == 8 * 8 + 20 * 20


def test_map_server_files_have_top_row_first_and_round_trip(tmp_path):
    data = np.zeros((4, 6), np.uint8)
    data[3, 0] = OCCUPIED  # top-left of the map (largest y)
    data[0, 5] = OCCUPIED  # bottom-right
    grid = OccupancyGrid(0.05, (-1.5, 2.0), data)
    pgm, yml = tmp_path / "g.pgm", tmp_path / "g.yaml"
    write_map_server(grid, str(pgm), str(yml), "g.pgm")
    raw = pgm.read_bytes()
    header = b"P5\n6 4\n255\n"
    assert raw.startswith(header)
    pixels = np.frombuffer(raw[len(header):], np.uint8).reshape(4, 6)
    assert pixels[0, 0] == 0 and pixels[3, 5] == 0  # occupied is black; first row is the top
    assert pixels[0, 1] == 254 and (pixels == 254).sum() == 22
    meta = yaml.safe_load(yml.read_text())
    assert meta == {"image": "g.pgm", "mode": "trinary", "resolution": 0.05, "origin": [-1.5, 2.0, 0.0],
                    "negate": 0, "occupied_thresh": 0.65, "free_thresh": 0.25}
    back = read_map_server(str(yml))
    np.testing.assert_array_equal(back.data, grid.data)
    assert back.origin_xy == grid.origin_xy and back.resolution_m == grid.resolution_m


def test_read_map_server_reports_missing_files(tmp_path):
    yml = tmp_path / "m.yaml"
    yml.write_text("image: nowhere.pgm\nresolution: 0.05\norigin: [0, 0, 0]\n")
    with pytest.raises(OccupancyError):
        read_map_server(str(yml))
