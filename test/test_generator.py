"""The garage generator: many seeds and shapes give valid garages whose requests can be staged, reached and served
in time within the energy bound; the CLI; and the committed examples are not stale."""
from __future__ import annotations

import glob
import math
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

from mobicharge_robot.core.arm.urdf_model import UrdfModel, default_urdf_path
from mobicharge_robot.core.energy.pack import PackParams, energy_content_wh
from mobicharge_robot.core.garage import generator as gen
from mobicharge_robot.core.garage.garage import GarageError, load_garage, parse_garage
from mobicharge_robot.core.garage.generator import (CATALOGUE, GeneratorError, energy_defaults_from_config,
                                                    generate_garage, garage_yaml, usable_energy_kwh)
from mobicharge_robot.core.garage.staging import staging_pose
from mobicharge_robot.core.geometry import point_in_polygon
from mobicharge_robot.core.navigation.occupancy import occupancy_from_garage
from mobicharge_robot.core.navigation.planner import GridPlanner
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.tools.check_garage import main as check_main
from mobicharge_robot.tools.generate_garage import main as generate_main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(data_path("config", "garages"), "gen_*.yaml")))
SEEDS = range(1, 13)


@pytest.fixture(scope="module")
def footprint():
    return UrdfModel.from_xacro(default_urdf_path()).footprint()


@pytest.fixture(scope="module")
def energy():
    """(usable kWh, robot output power kW) from the energy node's defaults."""
    pack, soc, power = energy_defaults_from_config(data_path("config", "mobicharge.yaml"))
    return usable_energy_kwh(pack, soc), power


@pytest.fixture(scope="module")
def generated(footprint, energy):
    """Every shape with SEEDS: {(shape, seed): data}."""
    return {(shape, seed): generate_garage(seed, footprint, energy[0], shape=shape)
            for shape in gen.SHAPES for seed in SEEDS}


def _edf_finish_times(garage, power_kw: float) -> dict:
    """A simple serve-in-order estimate, independent of the generator's: earliest departure first, straight-line
    driving at 0.5 m/s, 300 s handling per car, charging at the lower of the robot's and the car's power."""
    t, pos, out = 0.0, garage.depot.pose.xy, {}
    for v in sorted(garage.requested_vehicles(), key=lambda v: (v.request.departure_s, v.id)):
        here = garage.vehicle_pose(v).xy
        t += float(np.linalg.norm(here - pos)) / 0.5 + 300.0
        t += 3600.0 * v.request.energy_kwh / min(power_kw, v.battery.max_dc_power_kw)
        out[v.id] = t
        pos = here
    return out


def test_usable_energy_definition():
    pack = PackParams()
    expected = 0.96 * (energy_content_wh(0.9, pack) - energy_content_wh(0.2, pack)) / 1000.0
    assert usable_energy_kwh(pack, 0.9) == pytest.approx(expected)
    assert 30.0 < expected < 36.0  # about 70% of a 50 kWh pack, after the DC stage
    pack2, soc, power = energy_defaults_from_config(data_path("config", "mobicharge.yaml"))
    assert (pack2.capacity_kwh, soc, power) == (50.0, 0.9, 50.0)
    with pytest.raises(ValueError):
        usable_energy_kwh(pack, 0.1)


@pytest.mark.parametrize("shape", gen.SHAPES)
def test_every_generated_garage_validates_and_meets_the_brief(shape, generated, footprint, energy):
    usable, power = energy
    for seed in SEEDS:
        data = generated[(shape, seed)]
        g = parse_garage(data, f"{shape}-{seed}")  # raises on any mistake
        assert 20 <= len(g.spots) <= 120
        assert len(g.outline) == {"rect": 4, "L": 6, "T": 8}[shape]
        assert ("outline" in data["garage"]) == (shape != "rect")
        assert g.pillars
        for lane in g.lanes:
            assert 5.5 - 1e-9 <= lane.width_m <= 7.0 + 1e-9, (shape, seed, lane)
        requests = g.requested_vehicles()
        assert 3 <= len(requests) <= 8
        assert sum(v.request.energy_kwh for v in requests) <= 0.8 * usable + 1e-9
        finish = _edf_finish_times(g, power)
        for v in requests:
            assert v.inlet.type == "ccs2"
            staging_pose(g, v, footprint[0], footprint[1], 0.35)  # raises StagingError if the robot cannot stage
            assert finish[v.id] <= v.request.departure_s, (shape, seed, v.id)
        for v in g.vehicles:
            assert 3.6 <= v.length_m <= 5.2 and v.model in {m.name for m in CATALOGUE}
        # Everything on the floor: every spot corner, the depot and the dock inside the outline (own check).
        outline = np.array(g.outline)
        for s in g.spots:
            assert all(point_in_polygon(c, outline) for c in s.polygon), (shape, seed, s.id)
        assert point_in_polygon(g.depot.pose.xy, outline) and point_in_polygon(g.depot.dock.xy, outline)


def test_variety_across_seeds(generated):
    yaws = [s["yaw_rad"] for d in generated.values() for s in d["garage"]["spots"]]
    angled = [y for y in yaws if abs(math.remainder(y, 0.5 * math.pi)) > 0.1]
    assert angled and len(angled) < len(yaws)  # 90-degree and angled rows
    angles = {round(math.degrees(abs(math.remainder(y, math.pi))), 0) for y in angled}
    assert {45.0, 135.0} & angles and {60.0, 120.0, 30.0, 150.0} & angles
    directions = [ln["direction"] for d in generated.values() for ln in d["garage"]["lanes"]]
    assert "one_way" in directions and "two_way" in directions
    sides = {v["inlet"]["side"] for d in generated.values() for v in d["vehicles"] if v.get("request")}
    assert sides == {"left", "right"}
    others = {v["inlet"]["type"] for d in generated.values() for v in d["vehicles"] if not v.get("request")}
    assert {"type2", "ccs1"} <= others  # cars the robot cannot serve stand there too, without a request
    assert len({tuple(d["garage"]["size_m"]) for d in generated.values()}) > 20


def test_angled_rows_lean_with_one_way_traffic(generated):
    """A car in an angled spot points along its one-way lane's travel direction (it turned in by < 90 degrees):
    2 m behind its rear lies a one-way lane whose travel direction is within 90 degrees of the car's heading."""
    checked = 0
    for data in generated.values():
        g = parse_garage(data, "x")
        for s in g.spots:
            if abs(math.remainder(s.yaw_rad, 0.5 * math.pi)) < 0.1:
                continue
            heading = np.array([math.cos(s.yaw_rad), math.sin(s.yaw_rad)])
            behind = np.asarray(s.center) - (0.5 * s.length_m + 2.0) * heading
            lanes = [ln for ln in g.lanes if _in_lane(behind, ln)]
            assert any(ln.direction == "one_way" and np.dot(np.subtract(ln.end, ln.start), heading) > 0.0
                       for ln in lanes), (g.name, s.id)
            checked += 1
    assert checked > 50


def _in_lane(p, lane) -> bool:
    a, b = np.asarray(lane.start, float), np.asarray(lane.end, float)
    d = (b - a) / np.linalg.norm(b - a)
    t = float(np.dot(p - a, d))
    return 0.0 <= t <= float(np.linalg.norm(b - a)) and abs(float(d[0] * (p - a)[1] - d[1] * (p - a)[0])) <= 0.5 * lane.width_m


@pytest.mark.parametrize("shape, seed", [("rect", 2), ("L", 4), ("T", 5)])
def test_robot_can_reach_every_staging_pose_and_the_dock(shape, seed, generated, footprint):
    g = parse_garage(generated[(shape, seed)], "x")
    planner = GridPlanner(occupancy_from_garage(g, 0.05), robot_radius_m=0.5 * footprint[1] + 0.25, timeout_s=10.0)
    for v in g.requested_vehicles():
        path = planner.plan(g.depot.pose, staging_pose(g, v, footprint[0], footprint[1], 0.35))
        assert len(path) > 1
    planner.plan(g.depot.pose, g.depot.dock)


def test_outline_walls_close_the_floor(generated):
    """Consumers that only know walls (map, simulator) see the L and T boundaries: the middle of every outline edge,
    just inside the floor, lies in a wall, and the grid marks it occupied."""
    for shape in ("L", "T"):
        g = parse_garage(generated[(shape, 1)], "x")
        grid = occupancy_from_garage(g, 0.05)
        corners = list(g.outline)
        for a, b in zip(corners, corners[1:] + corners[:1]):
            d = np.subtract(b, a) / math.dist(a, b)
            probe = 0.5 * (np.add(a, b)) + 0.1 * np.array([-d[1], d[0]])  # 0.1 m towards the floor
            assert any(point_in_polygon(probe, w.polygon) for w in g.walls), (shape, a, b)
            assert grid.is_occupied(*probe)


def test_deterministic_and_seed_dependent(footprint, energy, generated):
    again = generate_garage(3, footprint, energy[0], shape="T")
    assert again == generated[("T", 3)]
    assert garage_yaml(again) == garage_yaml(generated[("T", 3)])
    assert generated[("T", 3)] != generated[("T", 4)]


def test_options_are_honoured(footprint, energy):
    usable = energy[0]
    for shape, spots, requests in (("rect", 20, 3), ("L", 120, 8), ("T", 64, 5)):
        d = generate_garage(11, footprint, usable, shape=shape, spots=spots, requests=requests)
        g = parse_garage(d, "x")
        assert len(g.spots) == spots and len(g.requested_vehicles()) == requests
    d = generate_garage(5, footprint, usable, shape="rect", size=(70.0, 45.0))
    assert d["garage"]["size_m"] == [70.0, 45.0]
    big = parse_garage(generate_garage(5, footprint, usable, requests=8, demand=2.0), "x")
    total = sum(v.request.energy_kwh for v in big.requested_vehicles())
    assert 0.8 * usable < total <= 2.0 * usable
    ccs1 = parse_garage(generate_garage(5, footprint, usable, connectors=("ccs1",)), "x", connectors=("ccs1",))
    assert {v.inlet.type for v in ccs1.requested_vehicles()} == {"ccs1"}


@pytest.mark.parametrize("kwargs, exc, text", [
    (dict(shape="U"), ValueError, "shape must be one of"),
    (dict(spots=19), ValueError, "spots must be an integer from 20 to 120"),
    (dict(spots=121), ValueError, "spots must be"),
    (dict(requests=2), ValueError, "requests must be an integer from 3 to 8"),
    (dict(demand=0.0), ValueError, "demand must be"),
    (dict(demand=float("nan")), ValueError, "demand must be"),
    (dict(size=(10.0, 40.0)), ValueError, "size must be"),
    (dict(size=(60.0, 40.0), spots=120), GeneratorError, "holds only"),
    (dict(connectors=("chademo",)), ValueError, "connector must be one of"),
    (dict(connectors=("type2",)), GeneratorError, "no car model"),
])
def test_bad_arguments(kwargs, exc, text, footprint, energy):
    with pytest.raises(exc, match=text):
        generate_garage(1, footprint, energy[0], **kwargs)


def test_cli_writes_a_garage_and_reports_mistakes(tmp_path, capsys):
    out = tmp_path / "g.yaml"
    args = ["--seed", "7", "--shape", "L", "--spots", "40", "--requests", "4", "--robot-size", "1.0", "0.7"]
    assert generate_main(args + ["-o", str(out)]) == 0
    assert "40 spots" in capsys.readouterr().out
    g = load_garage(out)
    assert len(g.spots) == 40 and len(g.requested_vehicles()) == 4
    assert check_main([str(out), "--robot-size", "1.0", "0.7"]) == 0
    for bad, text in ((["--seed", "1", "--spots", "5"], "spots must be"), (["--seed", "1", "--size", "60"], "WIDTHxDEPTH"),
                      (["--seed", "1", "--size", "30x20", "--spots", "100"], "error:"),
                      (["--seed", "1", "--shape", "O"], "invalid choice")):
        assert generate_main(bad + ["--robot-size", "1", "0.7", "-o", str(tmp_path / "x.yaml")]) == 2
        assert text in capsys.readouterr().err
    assert generate_main(["--seed", "1"]) == 2  # no output file
    assert "-o" in capsys.readouterr().err
    assert generate_main(["--seed", "1", "--robot-size", "1", "0.7", "-o", str(tmp_path / "no" / "x.yaml")]) == 2
    assert "no directory" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_cli_as_a_process_never_prints_a_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "mobicharge_robot.tools.generate_garage", "--seed", "1", "--demand",
                           "-3", "-o", str(tmp_path / "x.yaml")], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: demand must be a fraction of the usable energy from 0.05 to 5, got -3.0"


class _CachedUrdf:
    """Stands in for UrdfModel in the CLI so that the URDF (slow to expand) is read once per session."""

    size = None

    @classmethod
    def from_xacro(cls, _path):
        return cls

    @classmethod
    def footprint(cls):
        return cls.size


def test_committed_examples_are_valid_and_not_stale(tmp_path, capsys, monkeypatch, footprint):
    import mobicharge_robot.tools.generate_garage as cli
    monkeypatch.setattr(_CachedUrdf, "size", footprint)
    monkeypatch.setattr(cli, "UrdfModel", _CachedUrdf)
    assert len(EXAMPLES) >= 3
    shapes = set()
    for path in EXAMPLES:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        command = next(line for line in text.splitlines() if line.startswith("#   mobicharge-generate-garage "))
        options = shlex.split(command[len("#   mobicharge-generate-garage "):])
        assert options[-2:] == ["-o", "FILE"]
        fresh = tmp_path / os.path.basename(path)
        assert generate_main(options[:-2] + ["-o", str(fresh)]) == 0, capsys.readouterr().err
        assert fresh.read_text(encoding="utf-8") == text, f"{path} is stale: regenerate it with {command[4:]}"
        assert check_main([path, "--robot-size", *map(str, footprint)]) == 0, capsys.readouterr().err
        shapes.add(options[options.index("--shape") + 1] if "--shape" in options else "rect")
    assert shapes == {"rect", "L", "T"}


def test_default_garage_requests_only_what_the_connector_serves():
    g = load_garage(data_path("config", "garages", "default.yaml"))
    assert {v.inlet.type for v in g.requested_vehicles()} == {"ccs2"}
    assert {v.inlet.type for v in g.vehicles} == {"ccs2", "type2", "ccs1"}
    with pytest.raises(GarageError, match="cannot serve"):
        load_garage(data_path("config", "garages", "default.yaml"), connectors=("type2",))


def test_defaults_come_from_the_urdf_and_the_parameter_file(tmp_path, footprint, energy, generated):
    """``generate_garage(seed=..., shape=...)`` alone (as the scenario suite calls it) equals the explicit call."""
    data = gen.generate_garage(seed=2, shape="L")
    assert data == generated[("L", 2)]
    path = tmp_path / "w.yaml"
    gen.write_garage(data, str(path), header=["a note"])
    assert path.read_text(encoding="utf-8").startswith("# a note\ngarage:\n")
    assert len(load_garage(path).spots) == len(data["garage"]["spots"])
