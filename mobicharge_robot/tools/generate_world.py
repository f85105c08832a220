"""mobicharge-generate-world GARAGE.yaml -o worlds/NAME.sdf: the Gazebo Fortress world of a garage description.

The world (SDFormat 1.8, the version Gazebo Fortress's sdformat12 reads natively) holds:

- the floor (drawn inside the garage's outline, so L and T shapes show as such), the walls (including those the
  garage loader adds along an outline) and pillars (static boxes, ``WALL_HEIGHT_M`` / ``PILLAR_HEIGHT_M``);
- the painted lines of every parking spot and the keep-out zones' hatching (visual only, 2 mm above the floor);
- ceiling lights along the lanes (or on a grid when the garage has no lanes) and the depot's dock pad;
- a static car in each occupied spot: a body box of the car's size and colour on four wheels, with the charge inlet
  included from ``worlds/models/mobicharge_inlet_<type>`` at the inlet pose of the garage file;
- the world systems Gazebo needs for the robot's sensors (Physics, UserCommands for spawning, SceneBroadcaster,
  Sensors with ogre2 for the gpu_lidar and the camera, ForceTorque for the wrist sensor).

The inlet models are built from ``config/inlets.yaml`` through ``core/vision/inlets.py`` (the same geometry the port
detector and the loopback renderer use): the face outline as a polyline plate, a rim as deep as ``recess_depth_m``
around it, and each pin hole as a black disc of its opening diameter. Their frame is the inlet frame
(doc/architecture.md) and they are placed at ``Garage.inlet_pose`` as the loopback simulator does, so the face sits on
the car body's surface and the rim stands ``recess_depth_m`` proud of it. Holes are drawn, not cut: Gazebo has no
constructive geometry, and connector contact is simulated with MuJoCo (sim/contact.py), not in Gazebo.

Everything is derived from the garage's outline, walls, pillars, lanes, spots, zones, depot and vehicles (a garage
without an outline is its ``size_m`` rectangle). Output is deterministic (fixed number formatting, no time stamps), so a test can tell a stale committed world.

Exit status: 0 written, 2 for a bad garage file, inlet file or output path (one ``error: ...`` line, no traceback).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

import numpy as np

from ..core.garage.garage import (PILLAR_HEIGHT_M, WALL_HEIGHT_M, Garage, GarageError, Vehicle, inlet_in_vehicle,
                                  load_garage)
from ..core.vision.inlets import InletConfigError, InletModel, load_inlets

SDF_VERSION = "1.8"
MODEL_PREFIX = "mobicharge_inlet_"
LINE_WIDTH_M = 0.12
LINE_HEIGHT_M = 0.002
LIGHT_HEIGHT_M = 2.4
LIGHT_SPACING_M = 8.0
CAR_CLEARANCE_M = 0.15
CAR_WHEEL_RADIUS_M = 0.32
CAR_WHEEL_WIDTH_M = 0.22
FACE_THICKNESS_M = 0.003
FLOOR_SLAB_M = 0.001
RIM_THICKNESS_M = 0.002
HOLE_DISC_M = 0.0005
DEFAULT_CAR_RGB = (0.6, 0.6, 0.62)


class WorldError(Exception):
    """A world that cannot be generated (bad output path, inlet type missing from the inlet file)."""


# ----------------------------------------------------------------------------- formatting


def _f(v: float) -> str:
    """Fixed formatting: 6 decimals, trailing zeros dropped, never '-0'."""
    s = f"{float(v):.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _vec(values: Iterable[float]) -> str:
    return " ".join(_f(v) for v in values)


def matrix_to_rpy(r: np.ndarray) -> Tuple[float, float, float]:
    """Roll, pitch, yaw (rad) of a rotation matrix, SDF's convention: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r = np.asarray(r, float)
    pitch = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    if abs(r[2, 0]) < 1.0 - 1e-9:
        roll = math.atan2(r[2, 1], r[2, 2])
        yaw = math.atan2(r[1, 0], r[0, 0])
    else:  # gimbal lock: put the whole rotation about z into yaw
        roll = 0.0
        yaw = math.atan2(-r[0, 1], r[1, 1])
    return roll, pitch, yaw


def _pose(x=0.0, y=0.0, z=0.0, roll=0.0, pitch=0.0, yaw=0.0, relative_to: Optional[str] = None) -> str:
    rel = f' relative_to="{relative_to}"' if relative_to else ""
    return f"<pose{rel}>{_vec((x, y, z, roll, pitch, yaw))}</pose>"


def _pose_matrix(t: np.ndarray) -> str:
    return _pose(*t[:3, 3], *matrix_to_rpy(t[:3, :3]))


def _material(rgb: Sequence[float], emissive: Optional[Sequence[float]] = None) -> str:
    r, g, b = rgb
    out = (f"<material><ambient>{_vec((r, g, b, 1))}</ambient><diffuse>{_vec((r, g, b, 1))}</diffuse>"
           f"<specular>0.1 0.1 0.1 1</specular>")
    if emissive is not None:
        out += f"<emissive>{_vec((*emissive, 1))}</emissive>"
    return out + "</material>"


def _box_link(name: str, pose: str, size: Sequence[float], rgb: Sequence[float], collision: bool = True) -> List[str]:
    geo = f"<geometry><box><size>{_vec(size)}</size></box></geometry>"
    out = [f'<link name="{name}">', pose, f'<visual name="visual">{geo}{_material(rgb)}</visual>']
    if collision:
        out.append(f'<collision name="collision">{geo}</collision>')
    out.append("</link>")
    return out


# ----------------------------------------------------------------------------- the inlet models


def inlet_model_sdf(model: InletModel) -> str:
    """model.sdf of one inlet type; the model frame is the inlet frame (x right, y up, z out of the face)."""
    face_rgb = (0.12, 0.12, 0.13)
    hole_rgb = (0.0, 0.0, 0.0)
    rim_rgb = (0.2, 0.2, 0.21)
    outline = model.outline[:, :2]
    lines = [f'<?xml version="1.0"?>',
             f"<!-- Generated by mobicharge-generate-world from config/inlets.yaml ({escape(model.name)}); "
             f"do not edit. -->",
             f'<sdf version="{SDF_VERSION}">',
             f'<model name="{MODEL_PREFIX}{model.name}">',
             "<static>true</static>",
             '<link name="inlet">']
    points = "".join(f"<point>{_f(x)} {_f(y)}</point>" for x, y in outline)
    face_geo = f"<geometry><polyline>{points}<height>{_f(FACE_THICKNESS_M)}</height></polyline></geometry>"
    lines.append(f'<visual name="face">{_pose(z=-FACE_THICKNESS_M)}{face_geo}{_material(face_rgb)}</visual>')
    lines.append(f'<collision name="face_collision">{_pose(z=-FACE_THICKNESS_M)}{face_geo}</collision>')
    for i, (name, (x, y, _), d) in enumerate(zip(model.hole_names, model.keypoints, model.hole_diameters_m)):
        geo = f"<geometry><cylinder><radius>{_f(0.5 * d)}</radius><length>{_f(HOLE_DISC_M)}</length></cylinder></geometry>"
        lines.append(f'<visual name="hole_{i}"><!-- {escape(name)} -->{_pose(x, y, 0.5 * HOLE_DISC_M)}{geo}'
                     f"{_material(hole_rgb)}</visual>")
    # The rim: one thin wall per outline edge, from the face plane out to the body surface (z = recess_depth_m).
    depth = model.recess_depth_m
    n = len(outline)
    for i in range(n):
        a, b = outline[i], outline[(i + 1) % n]
        d = b - a
        length = float(np.hypot(*d))
        if length < 1e-6:
            continue
        mid = 0.5 * (a + b)
        normal = np.array([d[1], -d[0]]) / length  # outward for a counter-clockwise outline
        centre = mid + normal * (0.5 * RIM_THICKNESS_M)
        yaw = math.atan2(d[1], d[0])
        geo = (f"<geometry><box><size>{_vec((length + RIM_THICKNESS_M, RIM_THICKNESS_M, depth))}</size></box>"
               f"</geometry>")
        pose = _pose(centre[0], centre[1], 0.5 * depth, 0.0, 0.0, yaw)
        lines.append(f'<visual name="rim_{i}">{pose}{geo}{_material(rim_rgb)}</visual>')
    lines += ["</link>", "</model>", "</sdf>", ""]
    return "\n".join(lines)


def inlet_model_config(model: InletModel) -> str:
    return "\n".join([
        '<?xml version="1.0"?>',
        "<model>",
        f"  <name>{MODEL_PREFIX}{model.name}</name>",
        "  <version>1.0</version>",
        f'  <sdf version="{SDF_VERSION}">model.sdf</sdf>',
        "  <description>",
        f"    {escape(model.description or model.name)}: charge inlet face generated from config/inlets.yaml by",
        "    mobicharge-generate-world; model frame = inlet frame (x right, y up, z out of the face).",
        "  </description>",
        "</model>",
        ""])


def inlet_model_files(inlets: Dict[str, InletModel]) -> Dict[str, str]:
    """Relative path under the models directory -> file text, for every inlet type."""
    out = {}
    for name in sorted(inlets):
        out[f"{MODEL_PREFIX}{name}/model.sdf"] = inlet_model_sdf(inlets[name])
        out[f"{MODEL_PREFIX}{name}/model.config"] = inlet_model_config(inlets[name])
    return out


# ----------------------------------------------------------------------------- the world


def _segments_of_spots(garage: Garage) -> List[Tuple[Tuple[float, float], Tuple[float, float]]]:
    """Every spot edge once (spots in a row share their side lines)."""
    seen = set()
    out = []
    for spot in garage.spots:
        poly = spot.polygon
        for i in range(len(poly)):
            a, b = tuple(np.round(poly[i], 3)), tuple(np.round(poly[(i + 1) % len(poly)], 3))
            key = tuple(sorted((a, b)))
            if key in seen:
                continue
            seen.add(key)
            out.append((a, b))
    return out


def _line_visual(name: str, a, b, rgb, width=LINE_WIDTH_M) -> str:
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    length = float(np.hypot(*d))
    mid = 0.5 * (a + b)
    geo = f"<geometry><box><size>{_vec((length + width, width, LINE_HEIGHT_M))}</size></box></geometry>"
    pose = _pose(mid[0], mid[1], 0.5 * LINE_HEIGHT_M, 0.0, 0.0, math.atan2(d[1], d[0]))
    return f'<visual name="{name}">{pose}{geo}{_material(rgb)}</visual>'


def _light_positions(garage: Garage) -> List[Tuple[float, float]]:
    pts = []
    for lane in garage.lanes:
        a, b = np.asarray(lane.start, float), np.asarray(lane.end, float)
        length = float(np.hypot(*(b - a)))
        n = max(1, int(round(length / LIGHT_SPACING_M)))
        for k in range(n):
            p = a + (b - a) * ((k + 0.5) / n)
            if not any(math.hypot(p[0] - q[0], p[1] - q[1]) < 0.5 * LIGHT_SPACING_M for q in pts):
                pts.append((float(p[0]), float(p[1])))
    if not pts:
        sx, sy = garage.size_m
        nx, ny = max(1, int(round(sx / LIGHT_SPACING_M))), max(1, int(round(sy / LIGHT_SPACING_M)))
        pts = [((i + 0.5) * sx / nx, (j + 0.5) * sy / ny) for i in range(nx) for j in range(ny)]
    return pts


def _car_model(garage: Garage, v: Vehicle) -> List[str]:
    pose = garage.vehicle_pose(v)
    rgb = v.color_rgb or DEFAULT_CAR_RGB
    body_h = v.height_m - CAR_CLEARANCE_M
    out = [f'<model name="{v.id}">', "<static>true</static>",
           f"<!-- {escape(v.model)} in spot {escape(v.spot)}; inlet {v.inlet.type} on the {v.inlet.side} -->",
           _pose(pose.x, pose.y, 0.0, 0.0, 0.0, pose.yaw)]
    out += _box_link("body", _pose(z=CAR_CLEARANCE_M + 0.5 * body_h), (v.length_m, v.width_m, body_h), rgb)
    wheel_x = 0.5 * v.length_m - 0.8
    wheel_y = 0.5 * v.width_m - 0.5 * CAR_WHEEL_WIDTH_M - 0.02
    out.append('<link name="wheels">')
    for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        geo = (f"<geometry><cylinder><radius>{_f(CAR_WHEEL_RADIUS_M)}</radius><length>{_f(CAR_WHEEL_WIDTH_M)}"
               f"</length></cylinder></geometry>")
        pose_w = _pose(sx * wheel_x, sy * wheel_y, CAR_WHEEL_RADIUS_M, 0.5 * math.pi, 0.0, 0.0)
        out.append(f'<visual name="wheel_{i}">{pose_w}{geo}{_material((0.05, 0.05, 0.05))}</visual>')
        out.append(f'<collision name="wheel_{i}_collision">{pose_w}{geo}</collision>')
    out.append("</link>")
    # The inlet, at the pose the garage file gives it (vehicle frame), built from config/inlets.yaml.
    t = inlet_in_vehicle(v)
    out += ["<include>", f"<uri>model://{MODEL_PREFIX}{v.inlet.type}</uri>", "<name>inlet</name>",
            _pose_matrix(t), "</include>", "</model>"]
    return out


def world_sdf(garage: Garage, inlet_types: Iterable[str], world_name: Optional[str] = None) -> str:
    """The world's SDF text. ``inlet_types``: the inlet models available (a car needing another is a WorldError)."""
    available = set(inlet_types)
    for v in garage.vehicles:
        if v.inlet.type not in available:
            raise WorldError(f"vehicle '{v.id}' has inlet type '{v.inlet.type}', which config/inlets.yaml lacks")
    name = world_name or garage.name
    sx, sy = garage.size_m
    out = ['<?xml version="1.0"?>',
           f"<!-- Generated by mobicharge-generate-world from garage '{escape(garage.name)}'; do not edit. "
           f"Regenerate: mobicharge-generate-world config/garages/{escape(garage.name)}.yaml "
           f"-o worlds/{escape(name)}.sdf -->",
           f'<sdf version="{SDF_VERSION}">',
           f'<world name="{escape(name)}">',
           '<physics name="1ms" type="ignored"><max_step_size>0.001</max_step_size>'
           "<real_time_factor>1.0</real_time_factor></physics>",
           '<plugin filename="ignition-gazebo-physics-system" name="ignition::gazebo::systems::Physics"/>',
           '<plugin filename="ignition-gazebo-user-commands-system" name="ignition::gazebo::systems::UserCommands"/>',
           '<plugin filename="ignition-gazebo-scene-broadcaster-system" '
           'name="ignition::gazebo::systems::SceneBroadcaster"/>',
           '<plugin filename="ignition-gazebo-sensors-system" name="ignition::gazebo::systems::Sensors">'
           "<render_engine>ogre2</render_engine></plugin>",
           '<plugin filename="ignition-gazebo-forcetorque-system" name="ignition::gazebo::systems::ForceTorque"/>',
           "<gravity>0 0 -9.81</gravity>",
           "<scene><ambient>0.35 0.35 0.35 1</ambient><background>0.1 0.1 0.12 1</background>"
           "<shadows>false</shadows></scene>"]
    # Floor: a plane over the whole extent to stand on, drawn only inside the garage's outline (L or T shapes).
    out += ['<model name="floor">', "<static>true</static>", _pose(0.5 * sx, 0.5 * sy, 0.0)]
    plane = f"<geometry><plane><normal>0 0 1</normal><size>{_vec((sx, sy))}</size></plane></geometry>"
    outline = getattr(garage, "outline", None) or ((0.0, 0.0), (sx, 0.0), (sx, sy), (0.0, sy))
    points = "".join(f"<point>{_f(x - 0.5 * sx)} {_f(y - 0.5 * sy)}</point>" for x, y in outline)
    slab = f"<geometry><polyline>{points}<height>{_f(FLOOR_SLAB_M)}</height></polyline></geometry>"
    out += ['<link name="floor">', f'<collision name="collision">{plane}</collision>',
            f'<visual name="visual">{_pose(z=-FLOOR_SLAB_M)}{slab}{_material((0.45, 0.45, 0.46))}</visual>',
            "</link>", "</model>"]
    # Walls and pillars.
    out += ['<model name="structure">', "<static>true</static>"]
    for w in garage.walls:
        a, b = np.asarray(w.start, float), np.asarray(w.end, float)
        d = b - a
        mid = 0.5 * (a + b)
        out += _box_link(f"wall_{w.id}", _pose(mid[0], mid[1], 0.5 * WALL_HEIGHT_M, 0, 0, math.atan2(d[1], d[0])),
                         (float(np.hypot(*d)), w.thickness_m, WALL_HEIGHT_M), (0.7, 0.7, 0.68))
    for p in garage.pillars:
        out += _box_link(f"pillar_{p.id}", _pose(p.center[0], p.center[1], 0.5 * PILLAR_HEIGHT_M),
                         (p.size_m[0], p.size_m[1], PILLAR_HEIGHT_M), (0.6, 0.6, 0.58))
    out.append("</model>")
    # Painted lines (visual only): spot outlines in white, keep-out zones outlined and crossed in yellow.
    out += ['<model name="markings">', "<static>true</static>", '<link name="lines">']
    for i, (a, b) in enumerate(_segments_of_spots(garage)):
        out.append(_line_visual(f"spot_line_{i}", a, b, (0.95, 0.95, 0.95)))
    for z in garage.zones:
        if z.kind != "keep_out":
            continue
        poly = z.polygon
        for i in range(len(poly)):
            out.append(_line_visual(f"{z.id}_edge_{i}", poly[i], poly[(i + 1) % len(poly)], (0.95, 0.8, 0.1)))
        if len(poly) >= 4:
            out.append(_line_visual(f"{z.id}_cross_0", poly[0], poly[2], (0.95, 0.8, 0.1)))
            out.append(_line_visual(f"{z.id}_cross_1", poly[1], poly[3], (0.95, 0.8, 0.1)))
    dock = garage.depot.dock
    pad = f"<geometry><box><size>0.8 1.0 {_f(LINE_HEIGHT_M)}</size></box></geometry>"
    out.append(f'<visual name="dock_pad">{_pose(dock.x, dock.y, 0.5 * LINE_HEIGHT_M, 0, 0, dock.yaw)}{pad}'
               f"{_material((0.1, 0.5, 0.9))}</visual>")
    out += ["</link>", "</model>"]
    # Ceiling lights.
    for i, (x, y) in enumerate(_light_positions(garage)):
        out += [f'<light type="point" name="ceiling_light_{i}">', _pose(x, y, LIGHT_HEIGHT_M),
                "<diffuse>0.9 0.9 0.85 1</diffuse><specular>0.2 0.2 0.2 1</specular>",
                "<attenuation><range>14</range><constant>0.6</constant><linear>0.05</linear>"
                "<quadratic>0.002</quadratic></attenuation><cast_shadows>false</cast_shadows>", "</light>"]
    # Parked cars.
    for v in garage.vehicles:
        out += _car_model(garage, v)
    out += ["</world>", "</sdf>", ""]
    return "\n".join(out)


def write_world(garage_path: str, output: str, models_dir: Optional[str] = None,
                inlets_path: Optional[str] = None) -> List[str]:
    """Generate the world and the inlet models; returns the files written. GarageError, InletConfigError,
    WorldError or OSError on failure."""
    garage = load_garage(garage_path)
    inlets = load_inlets(inlets_path)
    if not output.endswith(".sdf"):
        raise WorldError(f"output '{output}' must end in .sdf")
    name = os.path.splitext(os.path.basename(output))[0]
    text = world_sdf(garage, inlets.keys(), name)
    models_dir = models_dir or os.path.join(os.path.dirname(os.path.abspath(output)), "models")
    written = []
    for rel, body in inlet_model_files(inlets).items():
        path = os.path.join(models_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(body)
        written.append(path)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    with open(output, "w", encoding="utf-8") as fh:
        fh.write(text)
    written.append(output)
    return written


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mobicharge-generate-world",
                                 description="Write the Gazebo Fortress world (SDF 1.8) of a garage description.")
    ap.add_argument("garage", metavar="GARAGE.yaml", help="garage description")
    ap.add_argument("-o", "--output", required=True, metavar="worlds/NAME.sdf", help="world file to write")
    ap.add_argument("--models-dir", metavar="DIR",
                    help="where the inlet models go (default: 'models' beside the output file)")
    ap.add_argument("--inlets", metavar="FILE", help="inlet geometry (default: the package's config/inlets.yaml)")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        written = write_world(args.garage, args.output, args.models_dir, args.inlets)
    except (GarageError, InletConfigError, WorldError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {exc.filename or args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {written[-1]} and {len(written) - 1} inlet model files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
