"""The garage description: the default file, the inlet frame, and a clear error for each kind of mistake."""
import copy
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml

from mobicharge_robot.core.garage import GarageError, load_garage, parse_garage
from mobicharge_robot.core.paths import data_path
from mobicharge_robot.core.staging import StagingError, staging_pose
from mobicharge_robot.tools.check_garage import main as check_main

DEFAULT = data_path("config", "garages", "default.yaml")


@pytest.fixture(scope="module")
def raw():
    with open(DEFAULT) as f:
        return yaml.safe_load(f)


def test_default_garage_meets_the_brief():
    g = load_garage(DEFAULT)
    assert g.size_m == (60.0, 40.0)
    assert len(g.spots) >= 20 and len(g.vehicles) >= 6 and len(g.requested_vehicles()) >= 3
    assert g.walls and g.pillars and len(g.lanes) >= 2
    assert all(ln.direction == "two_way" for ln in g.lanes[:2])
    for v in g.vehicles:
        assert v.inlet.type in ("ccs2", "type2", "ccs1")
        assert v.battery.capacity_kwh > 0


def test_requested_cars_can_be_staged_beside_their_inlet():
    g = load_garage(DEFAULT)
    for v in g.requested_vehicles():
        pose = staging_pose(g, v, 1.0, 0.7)
        inlet = g.inlet_pose(v)
        # Beside the inlet: centre 0.35 + 0.35 m out along the inlet normal, level with it.
        d = np.array([pose.x, pose.y]) - inlet[:2, 3]
        assert np.dot(d, inlet[:2, 2]) == pytest.approx(0.7, abs=1e-6)


def test_right_side_inlet_frame():
    g = load_garage(DEFAULT)
    v = g.vehicle("car_01")
    assert v.inlet.side == "right"
    T = g.inlet_pose(v)
    car = g.vehicle_pose(v)
    right = np.array([math.sin(car.yaw), -math.cos(car.yaw), 0.0])  # -y of the vehicle frame
    assert T[:3, 2] == pytest.approx(right)
    assert T[:3, 1] == pytest.approx([0, 0, 1])
    assert T[2, 3] == pytest.approx(v.inlet.height_m)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)


def test_blocked_inlet_side_cannot_be_staged(raw):
    data = copy.deepcopy(raw)
    data["vehicles"].append({"id": "blocker", "spot": "S02", "body_m": {"length": 4.2, "width": 1.8, "height": 1.5},
                             "inlet": {"side": "left", "height_m": 0.9, "from_front_m": 3.7},
                             "battery": {"capacity_kwh": 50, "soc": 0.5, "max_dc_power_kw": 50}})
    g = parse_garage(data, "x.yaml")
    with pytest.raises(StagingError, match="blocker"):
        staging_pose(g, g.vehicle("car_01"), 1.0, 0.7)


def _mutate(raw, fn):
    data = copy.deepcopy(raw)
    fn(data)
    return data


def _set(path, value):
    def fn(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return fn


def _delete(path):
    def fn(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return fn


BAD = [
    ("missing field", _delete(["vehicles", 0, "battery"]), "vehicles[0].battery", "missing required field"),
    ("string with unit", _set(["vehicles", 0, "inlet", "height_m"], "0.95 m"), "vehicles[0].inlet.height_m",
     "expected a number in metres"),
    ("millimetres", _set(["vehicles", 0, "inlet", "height_m"], 950), "vehicles[0].inlet.height_m", "millimetres"),
    ("unit in key", lambda d: d["vehicles"][0]["inlet"].update(height_mm=950), "vehicles[0].inlet.height_mm",
     "did you mean 'height_m'"),
    ("typo key", lambda d: d["vehicles"][0].update(colour=1), "vehicles[0].colour", "unknown field"),
    ("negative capacity", _set(["vehicles", 1, "battery", "capacity_kwh"], -40), "vehicles[1].battery.capacity_kwh",
     "implausible"),
    ("soc above one", _set(["vehicles", 1, "battery", "soc"], 35), "vehicles[1].battery.soc", "implausible"),
    ("nan", _set(["vehicles", 0, "body_m", "length"], float("nan")), "vehicles[0].body_m.length", "finite"),
    ("unknown spot", _set(["vehicles", 2, "spot"], "Z99"), "vehicles[2].spot", "does not exist"),
    ("two cars one spot", _set(["vehicles", 1, "spot"], "S03"), "vehicles[1].spot", "already taken"),
    ("car too big", _set(["vehicles", 0, "body_m", "length"], 6.5), "vehicles[0].body_m", "does not fit"),
    ("overlapping spots", _set(["garage", "spots", 1, "center"], [12.5, 2.8]), "garage.spots[1]", "overlaps"),
    ("duplicate id", _set(["garage", "spots", 1, "id"], "S01"), "garage.spots[1].id", "duplicate id"),
    ("spot outside", _set(["garage", "spots", 0, "center"], [70.0, 2.8]), "garage.spots[0]", "outside the garage"),
    ("depot outside", _set(["garage", "depot", "pose"], [-3.0, 2.0, 0.0]), "garage.depot.pose", "outside"),
    ("pillar outside", _set(["garage", "pillars", 0, "center"], [10.0, 80.0]), "garage.pillars[0].center",
     "outside"),
    ("inlet type", _set(["vehicles", 0, "inlet", "type"], "chademo"), "vehicles[0].inlet.type", "not one of"),
    ("inlet side", _set(["vehicles", 0, "inlet", "side"], "roof"), "vehicles[0].inlet.side", "not one of"),
    ("inlet past body", _set(["vehicles", 0, "inlet", "from_front_m"], 9.0), "vehicles[0].inlet.from_front_m",
     "implausible"),
    ("request too big", _set(["vehicles", 0, "request", "energy_kwh"], 500.0), "vehicles[0].request.energy_kwh",
     "implausible"),
    ("request exceeds room", _set(["vehicles", 0, "request", "energy_kwh"], 50.0), "vehicles[0].request.energy_kwh",
     "does not fit"),
    ("vehicles not a list", _set(["vehicles"], {"a": 1}), "vehicles", "expected a list"),
    ("no garage", _delete(["garage"]), "garage", "missing required field"),
]


@pytest.mark.parametrize("name, mutate, field, problem", BAD, ids=[b[0] for b in BAD])
def test_each_mistake_names_field_and_problem(raw, name, mutate, field, problem):
    with pytest.raises(GarageError) as err:
        parse_garage(_mutate(raw, mutate), "bad.yaml")
    assert err.value.field == field
    assert problem in err.value.problem
    assert str(err.value).startswith(f"bad.yaml: {field}: ")


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("garage:\n  name: [unclosed\n")
    with pytest.raises(GarageError) as err:
        load_garage(str(path))
    assert "line" in err.value.field and "invalid YAML" in err.value.problem


def test_cli_ok_and_errors_without_traceback(tmp_path, capsys, raw):
    assert check_main([DEFAULT]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_mutate(raw, _set(["vehicles", 2, "spot"], "Z99"))))
    proc = subprocess.run([sys.executable, "-m", "mobicharge_robot.tools.check_garage", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {bad}: vehicles[2].spot: spot 'Z99' does not exist"
    missing = subprocess.run([sys.executable, "-m", "mobicharge_robot.tools.check_garage", str(tmp_path / "no.yaml")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot be read" in missing.stderr and "Traceback" not in missing.stderr
