#!/usr/bin/env python3
"""Draw a top view of a Gazebo world SDF, read from the SDF itself (not from the garage file it came from), so the
picture shows what Gazebo loads.

    scripts/render_world.py worlds/default.sdf -o doc/default_world.png

Drawn: the floor (its outline polygon), every box of static models (walls, pillars, car bodies) at its pose, the painted lines, the car
wheels, the included inlets (with the direction their face looks), point lights and the dock pad. Poses are composed
through model, link and visual poses (SDF: x y z roll pitch yaw, R = Rz Ry Rx); ``relative_to`` is not used by the
generated worlds and is rejected. Exit status 0, or 2 with one ``error: ...`` line for an unreadable world.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np


def _pose(elem) -> np.ndarray:
    """4x4 transform of an element's <pose> child (identity when absent)."""
    p = elem.find("pose")
    if p is None:
        return np.eye(4)
    if p.get("relative_to"):
        raise ValueError(f"pose relative_to='{p.get('relative_to')}' is not supported by this renderer")
    x, y, z, roll, pitch, yaw = (float(v) for v in p.text.split())
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
    t = np.eye(4)
    t[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    t[:3, 3] = (x, y, z)
    return t


def _color(visual, default=(0.5, 0.5, 0.5)):
    d = visual.find("material/diffuse")
    return tuple(float(v) for v in d.text.split()[:3]) if d is not None else default


def _box_corners(t: np.ndarray, size) -> np.ndarray:
    sx, sy = 0.5 * size[0], 0.5 * size[1]
    local = np.array([[sx, sy, 0, 1], [-sx, sy, 0, 1], [-sx, -sy, 0, 1], [sx, -sy, 0, 1]], float)
    return (t @ local.T).T[:, :2]


def collect(world):
    """Shapes to draw: dicts with kind 'box' (corners, colour, z_top, is_line), 'disc', 'inlet', 'light'."""
    shapes = []
    for model in world.findall("model"):
        tm = _pose(model)
        for link in model.findall("link"):
            tl = tm @ _pose(link)
            for visual in link.findall("visual"):
                tv = tl @ _pose(visual)
                box = visual.find("geometry/box/size")
                cyl = visual.find("geometry/cylinder")
                plane = visual.find("geometry/plane/size")
                poly = visual.find("geometry/polyline")
                if poly is not None:
                    pts = np.array([[float(v) for v in p.text.split()] + [0.0, 1.0] for p in poly.findall("point")])
                    shapes.append({"kind": "box", "corners": (tv @ pts.T).T[:, :2], "color": _color(visual),
                                   "z_top": -1.0 if tv[2, 3] < 0 else tv[2, 3], "line": False})
                elif box is not None:
                    size = [float(v) for v in box.text.split()]
                    shapes.append({"kind": "box", "corners": _box_corners(tv, size), "color": _color(visual),
                                   "z_top": tv[2, 3] + 0.5 * size[2], "line": size[2] < 0.01})
                elif cyl is not None:
                    # Car wheels lie on their side: draw their footprint as a box.
                    r, length = float(cyl.findtext("radius")), float(cyl.findtext("length"))
                    shapes.append({"kind": "box", "corners": _box_corners(tv, (2 * r, length)), "color": (0.05,) * 3,
                                   "z_top": tv[2, 3] + r, "line": False})
                elif plane is not None:
                    size = [float(v) for v in plane.text.split()]
                    shapes.append({"kind": "box", "corners": _box_corners(tv, size), "color": _color(visual),
                                   "z_top": -1.0, "line": False})
        for inc in model.findall("include"):
            ti = tm @ _pose(inc)
            shapes.append({"kind": "inlet", "xy": ti[:2, 3], "normal": ti[:2, 2], "uri": inc.findtext("uri")})
    for light in world.findall("light"):
        shapes.append({"kind": "light", "xy": _pose(light)[:2, 3]})
    return shapes


def render(sdf_path: str, out_path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    root = ET.parse(sdf_path).getroot()
    world = root.find("world")
    if world is None:
        raise ValueError(f"{sdf_path} has no <world>")
    shapes = collect(world)
    boxes = sorted((s for s in shapes if s["kind"] == "box"), key=lambda s: (not s["line"], s["z_top"]))
    fig, ax = plt.subplots(figsize=(12, 8.4), dpi=110)
    ax.set_facecolor((0.1, 0.1, 0.12))
    for s in boxes:
        ax.add_patch(Polygon(s["corners"], closed=True, facecolor=s["color"], edgecolor="none",
                             zorder=1 if s["z_top"] < 0 else (2 if s["line"] else 3)))
    lights = np.array([s["xy"] for s in shapes if s["kind"] == "light"]).reshape(-1, 2)
    ax.scatter(lights[:, 0], lights[:, 1], s=25, marker="*", color=(1.0, 0.95, 0.6), zorder=5, label="ceiling lights")
    inlets = [s for s in shapes if s["kind"] == "inlet"]
    for i, s in enumerate(inlets):
        x, y = s["xy"]
        nx, ny = s["normal"]
        ax.annotate("", xy=(x + 1.2 * nx, y + 1.2 * ny), xytext=(x, y), zorder=6,
                    arrowprops={"arrowstyle": "->", "color": (0.1, 0.9, 0.3), "lw": 1.5})
        ax.plot([x], [y], "o", color=(0.1, 0.9, 0.3), ms=4, zorder=6,
                label="car inlets (arrow: out of the face)" if i == 0 else None)
    pts = np.concatenate([s["corners"] for s in boxes])
    ax.set_xlim(pts[:, 0].min() - 1, pts[:, 0].max() + 1)
    ax.set_ylim(pts[:, 1].min() - 1, pts[:, 1].max() + 1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, map frame)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{os.path.basename(sdf_path)}: Gazebo world '{world.get('name')}', top view drawn from the SDF "
                 f"({len(inlets)} cars)")
    ax.legend(loc="upper right", fontsize=8, facecolor=(0.9, 0.9, 0.9))
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Top view of a Gazebo world SDF as a PNG.")
    ap.add_argument("world", help="world SDF (e.g. worlds/default.sdf)")
    ap.add_argument("-o", "--output", required=True, help="PNG to write")
    args = ap.parse_args(argv)
    try:
        render(args.world, args.output)
    except (OSError, ET.ParseError, ValueError) as exc:
        print(f"error: {args.world}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
