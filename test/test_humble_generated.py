"""Generated files: the committed world, inlet models and map are what the generators make from the committed garage
and inlet files today (a stale file fails), the world places every car and inlet where the garage file says, and the
command-line tools fail cleanly on bad input."""
import copy
import filecmp
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from mobicharge_robot.core.garage.garage import load_garage, parse_garage
from mobicharge_robot.core.navigation.occupancy import occupancy_from_garage, read_map_server
from mobicharge_robot.core.vision.inlets import load_inlets
from mobicharge_robot.tools import generate_map, generate_world

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GARAGE = os.path.join(ROOT, "config", "garages", "default.yaml")


def _sdf_pose(elem):
    x, y, z, roll, pitch, yaw = (float(v) for v in elem.find("pose").text.split())
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw),
                              math.sin(yaw))
    t = np.eye(4)
    t[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    t[:3, 3] = (x, y, z)
    return t


def test_committed_world_and_models_are_not_stale(tmp_path):
    out = tmp_path / "worlds"
    generate_world.write_world(GARAGE, str(out / "default.sdf"))
    committed = os.path.join(ROOT, "worlds")
    assert (out / "default.sdf").read_text() == open(os.path.join(committed, "default.sdf")).read(), \
        "worlds/default.sdf is stale: mobicharge-generate-world config/garages/default.yaml -o worlds/default.sdf"
    for dirpath, _, files in os.walk(out / "models"):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), out)
            assert filecmp.cmp(os.path.join(dirpath, f), os.path.join(committed, rel), shallow=False), \
                f"worlds/{rel} is stale (regenerate the world)"
    generated = {os.path.relpath(os.path.join(d, f), out / "models") for d, _, fs in os.walk(out / "models")
                 for f in fs}
    committed_models = {os.path.relpath(os.path.join(d, f), os.path.join(committed, "models"))
                        for d, _, fs in os.walk(os.path.join(committed, "models")) for f in fs}
    assert generated == committed_models, "worlds/models holds files the generator no longer makes"


def test_committed_map_is_not_stale(tmp_path):
    generate_map.write_map(GARAGE, str(tmp_path / "default"))
    for ext in (".pgm", ".yaml"):
        assert filecmp.cmp(tmp_path / f"default{ext}", os.path.join(ROOT, "maps", f"default{ext}"), shallow=False), \
            f"maps/default{ext} is stale: mobicharge-generate-map config/garages/default.yaml -o maps/default"
    # ... and it reads back as the grid the builtin navigation plans on.
    grid = read_map_server(os.path.join(ROOT, "maps", "default.yaml"))
    np.testing.assert_array_equal(grid.occupied_mask(), occupancy_from_garage(load_garage(GARAGE)).occupied_mask())


def test_staleness_check_notices_a_changed_garage(tmp_path):
    data = yaml.safe_load(open(GARAGE))
    data["vehicles"][0]["inlet"]["height_m"] = 0.9
    changed = tmp_path / "g.yaml"
    changed.write_text(yaml.safe_dump(data))
    generate_world.write_world(str(changed), str(tmp_path / "default.sdf"))
    assert (tmp_path / "default.sdf").read_text() != open(os.path.join(ROOT, "worlds", "default.sdf")).read()


def test_every_car_and_inlet_is_where_the_garage_says():
    garage = load_garage(GARAGE)
    world = ET.parse(os.path.join(ROOT, "worlds", "default.sdf")).getroot().find("world")
    models = {m.get("name"): m for m in world.findall("model")}
    for v in garage.vehicles:
        car = models[v.id]
        assert car.findtext("static") == "true"
        t_car = _sdf_pose(car)
        np.testing.assert_allclose(t_car, garage.vehicle_pose(v).to_matrix(), atol=1e-5)
        body = car.find("link[@name='body']/visual/geometry/box/size").text.split()
        assert [float(s) for s in body[:2]] == pytest.approx([v.length_m, v.width_m])
        inc = car.find("include")
        assert inc.findtext("uri") == f"model://mobicharge_inlet_{v.inlet.type}"
        np.testing.assert_allclose(t_car @ _sdf_pose(inc), garage.inlet_pose(v), atol=1e-5)
    # Walls and pillars are all there.
    structure = models["structure"]
    links = {l.get("name") for l in structure.findall("link")}
    assert links == {f"wall_{w.id}" for w in garage.walls} | {f"pillar_{p.id}" for p in garage.pillars}


def test_inlet_models_are_built_from_the_inlet_file():
    inlets = load_inlets()
    for name, model in inlets.items():
        root = ET.parse(os.path.join(ROOT, "worlds", "models", f"mobicharge_inlet_{name}", "model.sdf")).getroot()
        link = root.find("model/link")
        holes = [v for v in link.findall("visual") if v.get("name").startswith("hole_")]
        assert len(holes) == len(model.keypoints)
        for v, kp, d in zip(holes, model.keypoints, model.hole_diameters_m):
            x, y = (float(s) for s in v.find("pose").text.split()[:2])
            assert (x, y) == pytest.approx(tuple(kp[:2]), abs=1e-6)
            assert float(v.findtext("geometry/cylinder/radius")) == pytest.approx(d / 2, abs=1e-6)
        face = link.find("visual[@name='face']/geometry/polyline")
        pts = [tuple(float(s) for s in p.text.split()) for p in face.findall("point")]
        np.testing.assert_allclose(pts, model.outline[:, :2], atol=1e-6)
        rims = [v for v in link.findall("visual") if v.get("name").startswith("rim_")]
        assert rims and all(float(v.findtext("geometry/box/size").split()[2]) == pytest.approx(model.recess_depth_m)
                            for v in rims)


def test_world_from_another_garage_without_lanes_or_cars(tmp_path):
    data = yaml.safe_load(open(GARAGE))
    data["garage"]["lanes"] = []
    data["vehicles"] = [v for v in data["vehicles"] if v["inlet"].get("type", "ccs2") == "ccs1"]
    g = parse_garage(copy.deepcopy(data), "test")
    text = generate_world.world_sdf(g, load_inlets().keys(), "other")
    root = ET.fromstring(text)
    assert root.find("world").get("name") == "other"
    assert len(root.findall("world/light")) > 0  # lights on a grid when there are no lanes
    assert len([m for m in root.findall("world/model") if m.find("include") is not None]) == len(data["vehicles"])


def test_world_generator_refuses_an_inlet_type_it_has_no_model_for():
    g = load_garage(GARAGE)
    with pytest.raises(generate_world.WorldError, match="ccs1"):
        generate_world.world_sdf(g, ["ccs2", "type2"])


@pytest.mark.parametrize("module,args", [
    ("generate_world", ["{bad}", "-o", "{tmp}/w.sdf"]),
    ("generate_world", ["{good}", "-o", "{tmp}/w.txt"]),
    ("generate_world", ["{missing}", "-o", "{tmp}/w.sdf"]),
    ("generate_map", ["{bad}", "-o", "{tmp}/m"]),
    ("generate_map", ["{good}", "-o", "{tmp}/"]),
    ("generate_map", ["{good}", "-o", "{tmp}/m", "--resolution", "0"]),
])
def test_tools_reject_bad_input_without_traceback(tmp_path, module, args):
    bad = tmp_path / "bad.yaml"
    bad.write_text("garage: {name: x}\n")
    subs = {"bad": str(bad), "good": GARAGE, "missing": str(tmp_path / "none.yaml"), "tmp": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", f"mobicharge_robot.tools.{module}", *[a.format(**subs) for a in args]],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_tools_write_through_the_command_line(tmp_path):
    for module, out in (("generate_world", tmp_path / "w" / "x.sdf"), ("generate_map", tmp_path / "m" / "x")):
        proc = subprocess.run([sys.executable, "-m", f"mobicharge_robot.tools.{module}", GARAGE, "-o", str(out)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "w" / "x.sdf").exists() and (tmp_path / "w" / "models" / "mobicharge_inlet_ccs2").is_dir()
    assert (tmp_path / "m" / "x.pgm").exists() and yaml.safe_load((tmp_path / "m" / "x.yaml").read_text())["image"] \
        == "x.pgm"


def test_render_script_draws_the_world_from_the_sdf(tmp_path):
    out = tmp_path / "w.png"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "render_world.py"),
                           os.path.join(ROOT, "worlds", "default.sdf"), "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import render_world
    finally:
        sys.path.pop(0)
    shapes = render_world.collect(ET.parse(os.path.join(ROOT, "worlds", "default.sdf")).getroot().find("world"))
    garage = load_garage(GARAGE)
    inlets = [s for s in shapes if s["kind"] == "inlet"]
    assert len(inlets) == len(garage.vehicles)
    for s, v in zip(inlets, garage.vehicles):
        np.testing.assert_allclose(s["xy"], garage.inlet_pose(v)[:2, 3], atol=1e-5)
    bad = tmp_path / "bad.sdf"
    bad.write_text("<sdf")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "render_world.py"), str(bad), "-o",
                           str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
