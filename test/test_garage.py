"""The garage description: the default file, the inlet frame, the CLI, and a clear error for each kind of mistake."""
from __future__ import annotations

import copy
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from mobicharge_robot.core.garage.garage import GarageError, inlet_in_vehicle, load_garage, parse_garage
from mobicharge_robot.core.geometry import (Pose2D, convex_polygons_intersect, point_in_polygon, polygon_area,
                                            rect_polygon)
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.tools.check_garage import main as check_main

DEFAULT = data_path("config", "garages", "default.yaml")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "garages")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def raw():
    with open(DEFAULT, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def garage():
    return load_garage(DEFAULT)


# ----------------------------------------------------------------------------- the default garage


def _point_polygon_distance(pt, poly) -> float:
    if point_in_polygon(pt, poly):
        return 0.0
    p = np.asarray(pt, float)
    best = math.inf
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        ab = b - a
        t = np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(p - (a + t * ab))))
    return best


def _lane_polygon(lane):
    mid = Pose2D(0.5 * (lane.start[0] + lane.end[0]), 0.5 * (lane.start[1] + lane.end[1]),
                 math.atan2(lane.end[1] - lane.start[1], lane.end[0] - lane.start[0]))
    return rect_polygon(mid, math.dist(lane.start, lane.end), lane.width_m)


def test_default_garage_layout(garage):
    assert garage.name == "default" and garage.size_m == (60.0, 40.0)
    assert garage.source == DEFAULT
    # Perimeter walls: every side of the rectangle lies under some wall.
    for probe in ((30.0, 0.1), (30.0, 39.9), (0.1, 20.0), (59.9, 20.0)):
        assert any(point_in_polygon(probe, w.polygon) for w in garage.walls), probe
    assert len(garage.pillars) >= 2
    assert len(garage.spots) >= 20
    for s in garage.spots:
        assert s.length_m == pytest.approx(5.0, abs=0.5) and s.width_m == pytest.approx(2.6, abs=0.3)


def test_default_lanes_are_two_way_wide_and_connected(garage):
    lanes = garage.lanes
    assert len(lanes) >= 4
    assert all(ln.direction == "two_way" and ln.width_m >= 6.0 for ln in lanes)
    polys = [_lane_polygon(ln) for ln in lanes]
    reached, frontier = {0}, [0]
    while frontier:
        i = frontier.pop()
        for j in range(len(lanes)):
            if j not in reached and convex_polygons_intersect(polys[i], polys[j]):
                reached.add(j)
                frontier.append(j)
    assert reached == set(range(len(lanes)))


def test_default_spots_are_perpendicular_to_their_lane(garage):
    polys = [_lane_polygon(ln) for ln in garage.lanes]
    for s in garage.spots:
        # The lane a spot opens onto is the one its rear (entry) edge touches.
        rear = s.pose.transform_points([[-0.5 * s.length_m - 0.2, 0.0]])[0]
        lane = next(ln for ln, p in zip(garage.lanes, polys) if point_in_polygon(rear, p))
        d = np.subtract(lane.end, lane.start)
        heading = np.array([math.cos(s.yaw_rad), math.sin(s.yaw_rad)])
        assert abs(np.dot(heading, d / np.linalg.norm(d))) < 1e-3, s.id


def test_default_depot_is_open(garage):
    depot = garage.depot.pose
    lane = next(ln for ln in garage.lanes if ln.id == "lane_north")
    assert point_in_polygon(depot.xy, _lane_polygon(lane)) and depot.x < min(lane.start[0], lane.end[0]) + 6.0
    for ob in garage.static_obstacles():
        assert _point_polygon_distance(depot.xy, ob.polygon) >= 3.0, ob.id


def test_default_vehicles_are_varied_and_requests_short(garage):
    cars = garage.vehicles
    assert len(cars) >= 7
    assert len({v.model for v in cars}) >= 5
    assert len({(v.length_m, v.width_m, v.height_m) for v in cars}) >= 5
    types = [v.inlet.type for v in cars]
    assert types.count("ccs2") > len(types) / 2 and len(set(types)) == 3
    assert {v.inlet.side for v in cars} == {"left", "right", "front", "rear"}
    assert len({v.inlet.height_m for v in cars}) >= 5
    requested = garage.requested_vehicles()
    assert len(requested) >= 4
    assert all(5.0 <= v.request.energy_kwh <= 12.0 for v in requested)
    assert [v.id for v in requested] == [v.id for v in cars if v.request is not None]  # file order


def test_lookups_and_obstacles(garage):
    car = garage.vehicle("car_01")
    assert garage.spot(car.spot).id == "S03"
    assert garage.vehicle_pose(car) == garage.spot("S03").pose
    with pytest.raises(GarageError) as err:
        garage.vehicle("car_99")
    assert err.value.field == "vehicles" and "car_99" in err.value.problem
    with pytest.raises(GarageError):
        garage.spot("Z99")
    obstacles = garage.static_obstacles()
    kinds = [o.kind for o in obstacles]
    assert kinds.count("wall") == len(garage.walls) and kinds.count("pillar") == len(garage.pillars)
    assert kinds.count("vehicle") == len(garage.vehicles)
    by_id = {o.id: o for o in obstacles}
    assert by_id["car_01"].height_m == car.height_m and by_id["w_south"].height_m == 2.5
    assert by_id[garage.pillars[0].id].height_m == 2.5
    body = by_id["car_01"].polygon
    assert body.shape == (4, 2) and not body.flags.writeable
    assert np.linalg.norm(body[0] - body[1]) * np.linalg.norm(body[1] - body[2]) == pytest.approx(
        car.length_m * car.width_m)
    assert len(garage.keep_out_polygons()) == sum(z.kind == "keep_out" for z in garage.zones) >= 1


# ----------------------------------------------------------------------------- the inlet frame


def _axes_ok(T):
    R = T[:3, :3]
    assert R @ R.T == pytest.approx(np.eye(3), abs=1e-9)
    assert np.linalg.det(R) == pytest.approx(1.0)
    assert R[:, 1] == pytest.approx([0.0, 0.0, 1.0])  # y up
    assert R[:, 0] == pytest.approx(np.cross(R[:, 1], R[:, 2]))  # x = y cross z


def test_right_side_inlet_frame(garage):
    v = garage.vehicle("car_01")
    assert v.inlet.side == "right"
    T = garage.inlet_pose(v)
    _axes_ok(T)
    car = garage.vehicle_pose(v)
    minus_y_vehicle = np.array([math.sin(car.yaw), -math.cos(car.yaw), 0.0])
    assert T[:3, 2] == pytest.approx(minus_y_vehicle)
    assert T[2, 3] == pytest.approx(v.inlet.height_m)
    # On the body surface: half a width to the car's right, from_front_m behind the front bumper.
    local = car.inverse().transform_points(T[:2, 3])[0]
    assert local == pytest.approx([0.5 * v.length_m - v.inlet.from_front_m, -0.5 * v.width_m])


def test_left_rear_and_front_inlet_frames(garage):
    for vid, side, normal_local in (("car_03", "left", (0, 1)), ("car_08", "rear", (-1, 0)),
                                    ("car_09", "front", (1, 0))):
        v = garage.vehicle(vid)
        assert v.inlet.side == side
        T = garage.inlet_pose(v)
        _axes_ok(T)
        car = garage.vehicle_pose(v)
        expected = car.transform_points([normal_local])[0] - car.xy
        assert T[:2, 2] == pytest.approx(expected, abs=1e-9)
        local = car.inverse().transform_points(T[:2, 3])[0]
        if side == "left":
            assert local == pytest.approx([0.5 * v.length_m - v.inlet.from_front_m, 0.5 * v.width_m])
        else:
            sign = 1.0 if side == "front" else -1.0
            assert local == pytest.approx([sign * 0.5 * v.length_m, v.inlet.lateral_m])
        assert inlet_in_vehicle(v)[2, 3] == pytest.approx(v.inlet.height_m)


# ----------------------------------------------------------------------------- mistakes, one at a time


def _mutate(raw, fn):
    data = copy.deepcopy(raw)
    fn(data)
    return data


def _at(d, path):
    for key in path:
        d = d[key]
    return d


def _set(path, value):
    return lambda d: _at(d, path[:-1]).__setitem__(path[-1], value)


def _delete(path):
    return lambda d: _at(d, path[:-1]).__delitem__(path[-1])


def _add(path, key, value):
    return lambda d: _at(d, path).__setitem__(key, value)


def _append(path, item):
    return lambda d: _at(d, path).append(item)


def _both(f, g):
    return lambda d: (f(d), g(d))


_CAR = {"id": "extra", "spot": "S15", "body_m": {"length": 4.2, "width": 1.8, "height": 1.5},
        "inlet": {"side": "left", "height_m": 0.9, "from_front_m": 3.7},
        "battery": {"capacity_kwh": 50, "soc": 0.5, "max_dc_power_kw": 50}}
V0 = ["vehicles", 0]  # car_01 in S03, 4.26 m long, right inlet, 58 kWh at soc 0.35, with a request

BAD = [
    ("missing field", _delete(V0 + ["battery"]), "vehicles[0].battery", "missing required field"),
    ("no garage", _delete(["garage"]), "garage", "missing required field"),
    ("no spots", _delete(["garage", "spots"]), "garage.spots", "missing required field"),
    ("empty spots", _set(["garage", "spots"], []), "garage.spots", "must not be empty"),
    ("string with unit", _set(V0 + ["inlet", "height_m"], "0.95 m"), "vehicles[0].inlet.height_m",
     "expected a number in metres, got str '0.95 m'"),
    ("yaw as word", _set(["garage", "spots", 0, "yaw_rad"], "south"), "garage.spots[0].yaw_rad",
     "expected a number in radians"),
    ("size as string", _set(["garage", "size_m"], "60x40"), "garage.size_m", "expected a list of 2 numbers"),
    ("boolean soc", _set(V0 + ["battery", "soc"], True), "vehicles[0].battery.soc", "expected a fraction, got bool"),
    ("nan length", _set(V0 + ["body_m", "length"], float("nan")), "vehicles[0].body_m.length", "finite"),
    ("infinite soc", _set(V0 + ["battery", "soc"], float("inf")), "vehicles[0].battery.soc", "finite"),
    ("millimetres", _set(V0 + ["inlet", "height_m"], 950), "vehicles[0].inlet.height_m",
     "950 is implausible, expected metres (0.1..2.5); it looks like millimetres"),
    ("unit in key", _add(V0 + ["inlet"], "height_mm", 950), "vehicles[0].inlet.height_mm",
     "unknown field; did you mean 'height_m'?"),
    ("kw for kwh", _add(V0 + ["battery"], "capacity_kw", 58), "vehicles[0].battery.capacity_kw",
     "did you mean 'capacity_kwh'?"),
    ("typo key", _add(V0, "colour_rgb", [1, 0, 0]), "vehicles[0].colour_rgb",
     "unknown field; did you mean 'color_rgb'?"),
    ("unknown top-level key", _add([], "vehicle", []), "vehicle", "unknown field; did you mean 'vehicles'?"),
    ("negative capacity", _set(["vehicles", 1, "battery", "capacity_kwh"], -40), "vehicles[1].battery.capacity_kwh",
     "must be positive, got -40"),
    ("zero capacity", _set(["vehicles", 1, "battery", "capacity_kwh"], 0), "vehicles[1].battery.capacity_kwh",
     "must be positive"),
    ("soc as percent", _set(["vehicles", 1, "battery", "soc"], 35), "vehicles[1].battery.soc",
     "implausible, expected a fraction (0..1)"),
    ("negative soc", _set(["vehicles", 1, "battery", "soc"], -0.1), "vehicles[1].battery.soc", "implausible"),
    ("colour above one", _set(V0 + ["color_rgb"], [200, 10, 10]), "vehicles[0].color_rgb[0]",
     "200 is implausible, expected a fraction (0..1)"),
    ("overlapping spots", _set(["garage", "spots", 1, "center"], [12.5, 2.8]), "garage.spots[1]",
     "spot 'S02' overlaps spot 'S01'"),
    ("duplicate spot id", _set(["garage", "spots", 1, "id"], "S01"), "garage.spots[1].id",
     "duplicate id 'S01' (already used by garage.spots[0])"),
    ("duplicate vehicle id", _set(["vehicles", 1, "id"], "car_01"), "vehicles[1].id", "duplicate id 'car_01'"),
    ("unknown spot", _set(["vehicles", 2, "spot"], "Z99"), "vehicles[2].spot", "spot 'Z99' does not exist"),
    ("two cars one spot", _set(["vehicles", 1, "spot"], "S03"), "vehicles[1].spot",
     "spot 'S03' is already taken by 'car_01'"),
    ("car too long", _set(V0 + ["body_m", "length"], 5.5), "vehicles[0].body_m", "larger than spot 'S03'"),
    ("car too wide", _both(_set(["garage", "spots", 2, "size_m"], [5.0, 2.2]), _set(V0 + ["body_m", "width"], 2.3)),
     "vehicles[0].body_m", "a 4.26 x 2.3 m car is larger than spot 'S03' (5 x 2.2 m)"),
    ("spot on a pillar", _set(["garage", "pillars", 0, "center"], [16.5, 2.8]), "garage.spots[2]",
     "spot 'S03' overlaps pillar 'p_island_1'"),
    ("spot in a wall", _set(["garage", "walls", 4, "start"], [10.0, 31.6]), "garage.spots[45]",
     "spot 'N01' overlaps wall 'w_north_row'"),
    ("spot in a keep-out zone", _set(["garage", "zones", 0, "polygon"], [[47, 30], [50, 30], [50, 33], [47, 33]]),
     "garage.spots[59]", "spot 'N15' overlaps keep-out zone 'ramp_keep_out'"),
    ("depot in a pillar", _set(["garage", "depot", "pose"], [10.0, 17.2, 0.0]), "garage.depot.pose",
     "the depot (10, 17.2) lies inside pillar 'p_island_1'"),
    ("dock in a wall", _set(["garage", "depot", "dock"], [0.1, 25.85, 3.1416]), "garage.depot.dock",
     "the dock (0.1, 25.85) lies inside wall 'w_west'"),
    ("dock in a keep-out zone", _set(["garage", "depot", "dock"], [55.0, 37.0, 0.0]), "garage.depot.dock",
     "the dock (55, 37) lies inside keep-out zone 'ramp_keep_out'"),
    ("request with a type2 inlet", _set(V0 + ["inlet", "type"], "type2"), "vehicles[0].request",
     "car 'car_01' has a type2 inlet, which the robot's connector (ccs2) cannot serve"),
    ("outline not a polygon", _add(["garage"], "outline", [[0, 0], [60, 0]]), "garage.outline",
     "needs at least 3 corners"),
    ("outline outside size", _add(["garage"], "outline", [[0, 0], [70, 0], [60, 40], [0, 40]]),
     "garage.outline[1]", "outside the garage"),
    ("outline self-crossing", _add(["garage"], "outline", [[0, 0], [60, 40], [60, 0], [0, 40]]), "garage.outline",
     "is not a simple polygon"),
    ("outline repeats a corner", _add(["garage"], "outline", [[0, 0], [60, 0], [60, 0], [0, 40]]),
     "garage.outline[2]", "repeats corner 1"),
    ("spot outside the outline", _add(["garage"], "outline", [[0, 0], [20, 0], [20, 1], [22, 1], [22, 0], [60, 0],
                                                              [60, 40], [0, 40]]),
     "garage.spots[3]", "spot 'S04' corner (20.4, 0.3) lies outside the garage outline"),
    ("lane end outside the outline", _add(["garage"], "outline", [[0, 0], [60, 0], [60, 40], [30, 40], [30, 20],
                                                                  [0, 20]]),
     "garage.lanes[1].start", "start (0.3, 25.85) lies outside the garage outline"),
    ("lane across a notch", _add(["garage"], "outline", [[0, 0], [60, 0], [60, 40], [31, 40], [31, 8], [29, 8],
                                                         [29, 40], [0, 40]]),
     "garage.lanes[0]", "leaves the garage outline between its start and end"),
    ("pillar on a spike of wall", _add(["garage"], "outline", [[0, 0], [9.9, 0], [9.9, 17.2], [10.1, 17.2], [10.1, 0],
                                                               [60, 0], [60, 40], [0, 40]]),
     "garage.pillars[0]", "pillar 'p_island_1' reaches outside the garage outline"),
    ("outline wall id taken", _both(_add(["garage"], "outline", [[0, 0], [60, 0], [60, 40], [0, 40]]),
                                    _set(["garage", "walls", 0, "id"], "outline_wall_2")),
     "garage.walls[0].id", "id 'outline_wall_2' is reserved"),
    ("spot outside", _set(["garage", "spots", 0, "center"], [70.0, 2.8]), "garage.spots[0]", "outside the garage"),
    ("spot sticking out", _set(["garage", "spots", 0, "center"], [11.3, 2.0]), "garage.spots[0]",
     "outside the garage"),
    ("depot outside", _set(["garage", "depot", "pose"], [-3.0, 2.0, 0.0]), "garage.depot.pose", "outside"),
    ("dock outside", _set(["garage", "depot", "dock"], [61.0, 2.0, 0.0]), "garage.depot.dock", "outside"),
    ("pillar outside", _set(["garage", "pillars", 0, "center"], [10.0, 80.0]), "garage.pillars[0].center",
     "outside"),
    ("pillar sticking out", _set(["garage", "pillars", 0, "center"], [59.9, 20.0]), "garage.pillars[0]",
     "outside"),
    ("wall outside", _set(["garage", "walls", 0, "end"], [65.0, 0.15]), "garage.walls[0].end", "outside"),
    ("inlet type", _set(V0 + ["inlet", "type"], "chademo"), "vehicles[0].inlet.type",
     "'chademo' is not one of ccs2, type2, ccs1"),
    ("inlet side", _set(V0 + ["inlet", "side"], "roof"), "vehicles[0].inlet.side", "not one of"),
    ("inlet past body", _set(V0 + ["inlet", "from_front_m"], 9.0), "vehicles[0].inlet.from_front_m",
     "9 m is outside the 4.26 m long body"),
    ("inlet in front of body", _set(V0 + ["inlet", "from_front_m"], -0.2), "vehicles[0].inlet.from_front_m",
     "outside the 4.26 m long body"),
    ("side inlet without position", _delete(V0 + ["inlet", "from_front_m"]), "vehicles[0].inlet.from_front_m",
     "missing required field"),
    ("side inlet with lateral", _add(V0 + ["inlet"], "lateral_m", 0.2), "vehicles[0].inlet.lateral_m",
     "only a front or rear inlet"),
    ("rear inlet with from_front", _set(V0 + ["inlet", "side"], "rear"), "vehicles[0].inlet.from_front_m",
     "placed with lateral_m"),
    ("inlet above roof", _set(V0 + ["inlet", "height_m"], 1.6), "vehicles[0].inlet.height_m",
     "not below the body height"),
    ("request too big", _set(V0 + ["request", "energy_kwh"], 500.0), "vehicles[0].request.energy_kwh",
     "implausible"),
    ("request exceeds room", _set(V0 + ["request", "energy_kwh"], 50.0), "vehicles[0].request.energy_kwh",
     "does not fit"),
    ("departure in the past", _set(V0 + ["request", "departure_s"], -10), "vehicles[0].request.departure_s",
     "must be positive"),
    ("lane direction", _set(["garage", "lanes", 0, "direction"], "twoway"), "garage.lanes[0].direction",
     "did you mean 'two_way'?"),
    ("speed zone without speed", _delete(["garage", "zones", 1, "max_speed_mps"]),
     "garage.zones[1].max_speed_mps", "missing required field"),
    ("keep-out with speed", _add(["garage", "zones", 0], "max_speed_mps", 0.3), "garage.zones[0].max_speed_mps",
     "only a speed_limit zone"),
    ("zone of two points", _set(["garage", "zones", 0, "polygon"], [[1, 1], [2, 2]]), "garage.zones[0].polygon",
     "at least 3 points"),
    ("vehicles not a list", _set(["vehicles"], {"a": 1}), "vehicles", "expected a list, got dict"),
    ("vehicle not a mapping", _append(["vehicles"], "car_10"), "vehicles[9]", "expected a mapping, got str"),
    ("appended car in a taken spot", _append(["vehicles"], dict(_CAR, spot="S03")), "vehicles[9].spot",
     "already taken"),
]


@pytest.mark.parametrize("name, mutate, field, problem", BAD, ids=[b[0] for b in BAD])
def test_each_mistake_names_field_and_problem(raw, name, mutate, field, problem):
    with pytest.raises(GarageError) as err:
        parse_garage(_mutate(raw, mutate), "bad.yaml")
    assert err.value.field == field
    assert problem in err.value.problem
    assert err.value.source == "bad.yaml"
    assert str(err.value) == f"bad.yaml: {field}: {err.value.problem}"


def test_the_unmutated_data_parses(raw):
    # Guards the table above: each case fails because of its own mutation, not because of the base data.
    g = parse_garage(copy.deepcopy(raw), "ok.yaml")
    assert len(g.vehicles) == len(raw["vehicles"]) and g.source == "ok.yaml"
    parse_garage(_mutate(raw, _append(["vehicles"], _CAR)), "ok.yaml")


FILE_CASES = [
    ("bad_syntax.yaml", "line 5, column 8", "invalid YAML"),
    ("duplicate_key.yaml", "line 17, column 5", "duplicate key 'height_m' (first at line 15)"),
    ("inlet_height_mm.yaml", "vehicles[0].inlet.height_mm", "did you mean 'height_m'?"),
    ("not_a_mapping.yaml", "file", "expected a mapping, got list"),
    ("no_such_file.yaml", "file", "cannot be read: No such file or directory"),
]


@pytest.mark.parametrize("name, field, problem", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_file_level_mistakes(name, field, problem):
    path = os.path.join(FIXTURES, name)
    with pytest.raises(GarageError) as err:
        load_garage(path)
    assert (err.value.source, err.value.field) == (path, field)
    assert problem in err.value.problem


def test_empty_and_binary_files(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(GarageError, match="expected a mapping, got nothing"):
        load_garage(empty)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garage")
    with pytest.raises(GarageError, match="cannot be read"):
        load_garage(binary)


# ----------------------------------------------------------------------------- the CLI


def test_cli_summary_for_valid_files(capsys, garage):
    assert check_main([DEFAULT, "--robot-size", "1.0", "0.7"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{DEFAULT}: garage 'default'") and out[0].endswith(": ok")
    assert f"{len(garage.spots)} spots, {len(garage.vehicles)} vehicles, 4 requests" in out[0]


def test_cli_reports_each_bad_file_and_keeps_going(capsys):
    bad = os.path.join(FIXTURES, "inlet_height_mm.yaml")
    blocked = os.path.join(FIXTURES, "blocked_inlet.yaml")
    assert check_main([bad, DEFAULT, blocked]) == 2
    captured = capsys.readouterr()
    assert captured.out.count(": ok") == 1
    errors = captured.err.strip().splitlines()
    assert errors[0].startswith(f"error: {bad}: vehicles[0].inlet.height_mm: unknown field")
    assert errors[1] == (f"error: {blocked}: vehicles[0]: cannot stage beside 'car_01': no room beside the right "
                         f"inlet: the robot would touch vehicle 'car_02'")


def test_cli_usage_errors_return_a_status(capsys):
    assert check_main([]) == 2
    assert "usage" in capsys.readouterr().err
    assert check_main([DEFAULT, "--robot-size", "0", "0.7"]) == 2


def _run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mobicharge_robot.tools.check_garage", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=60)


def test_cli_as_a_process(tmp_path, raw):
    ok = _run_cli(DEFAULT)  # footprint read from the URDF
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": ok") and not ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_mutate(raw, _set(["vehicles", 2, "spot"], "Z99"))))
    proc = _run_cli(str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {bad}: vehicles[2].spot: spot 'Z99' does not exist"
    missing = _run_cli(str(tmp_path / "no.yaml"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"error: {tmp_path / 'no.yaml'}: file: cannot be read: No such file or directory"


def test_cli_connector_option(tmp_path, raw, capsys):
    data = _mutate(raw, _set(V0 + ["inlet", "type"], "type2"))
    path = tmp_path / "type2.yaml"
    path.write_text(yaml.safe_dump(data))
    assert check_main([str(path), "--robot-size", "1.0", "0.7"]) == 2
    assert "vehicles[0].request: car 'car_01' has a type2 inlet" in capsys.readouterr().err
    assert check_main([str(path), "--robot-size", "1.0", "0.7", "--connector", "type2", "--connector", "ccs2"]) == 0
    assert check_main([str(path), "--connector", "chademo"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_outline_adds_walls_along_every_edge(raw):
    outline = [[0, 0], [60, 0], [60, 40], [0, 40]]
    g = parse_garage(_mutate(raw, _add(["garage"], "outline", outline[::-1])), "outline.yaml")  # clockwise is fine
    assert set(g.outline) == {(0, 0), (60, 0), (60, 40), (0, 40)} and polygon_area(np.array(g.outline)) > 0
    added = [w for w in g.walls if w.id.startswith("outline_wall_")]
    assert len(added) == 4 and len(g.walls) == len(raw["garage"]["walls"]) + 4
    for w in added:  # on the floor side of its edge, 0.3 m thick
        assert all(-1e-9 <= x <= 60 + 1e-9 and -1e-9 <= y <= 40 + 1e-9 for x, y in w.polygon)
        assert w.thickness_m == pytest.approx(0.3)
    assert parse_garage(copy.deepcopy(raw), "plain.yaml").outline == ((0, 0), (60, 0), (60, 40), (0, 40))
