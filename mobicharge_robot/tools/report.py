"""The demo's picture: the garage with the driven path, the pack's state of charge, and energy per car."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.patches import Polygon  # noqa: E402


def write_report(result, path: str, garage, world: dict | None = None) -> None:
    """``world``: the simulator's drawn true world (``world.json``), drawn over the garage file's belief, so a
    reader sees where the world differed from what the robot was told."""
    fig = plt.figure(figsize=(14, 8))
    ax_map = fig.add_subplot(1, 2, 1)
    ax_soc = fig.add_subplot(2, 2, 2)
    ax_kwh = fig.add_subplot(2, 2, 4)

    for ob in garage.static_obstacles():
        color = {"wall": "0.25", "pillar": "0.45"}.get(ob.kind, "tab:blue")
        ax_map.add_patch(Polygon(ob.polygon, closed=True, color=color, alpha=0.8 if ob.kind != "vehicle" else 0.5))
    occupied = {v.spot for v in garage.vehicles}
    for spot in garage.spots:
        ax_map.add_patch(Polygon(spot.polygon, closed=True, fill=False, lw=0.5, ec="0.6"))
        if spot.id not in occupied:
            ax_map.text(spot.center[0], spot.center[1], spot.id, fontsize=5, ha="center", va="center", color="0.5")
    requested = {v.id for v in garage.requested_vehicles()}
    for v in garage.vehicles:
        if v.id in requested:
            pose = garage.vehicle_pose(v)
            ax_map.text(pose.x, pose.y, v.id.replace("_", " "), fontsize=6, ha="center", va="center",
                        color="black", weight="bold", rotation=90 if abs(math.sin(pose.yaw)) > 0.7 else 0)
    if world:
        _draw_world(ax_map, world)
    s = result.series
    if s.get("x"):
        d = garage.depot.pose
        c, sn = math.cos(d.yaw), math.sin(d.yaw)
        xs = [d.x + c * x - sn * y for x, y in zip(s["x"], s["y"])]
        ys = [d.y + sn * x + c * y for x, y in zip(s["x"], s["y"])]
        ax_map.plot(xs, ys, "-", color="tab:red", lw=1.2, label="driven path (odometry)")
    ax_map.plot([garage.depot.pose.x], [garage.depot.pose.y], "k^", ms=9, label="depot")
    ax_map.set_xlim(0, garage.size_m[0])
    ax_map.set_ylim(0, garage.size_m[1])
    ax_map.set_aspect("equal")
    ax_map.set_title(f"garage '{garage.name}'")
    ax_map.set_xlabel("x (m)")
    ax_map.set_ylabel("y (m)")
    ax_map.legend(loc="upper right", fontsize=7)

    if s.get("t"):
        ax_soc.plot(s["t"], [100 * v for v in s["soc"]], color="tab:green")
    ax_soc.set_title("onboard pack state of charge (estimate)")
    ax_soc.set_xlabel("sim time (s)")
    ax_soc.set_ylabel("%")
    ax_soc.grid(alpha=0.3)

    vehicles = result.summary.get("vehicles", [])
    names = [v["id"] for v in vehicles]
    ax_kwh.bar([i - 0.2 for i in range(len(names))], [v["requested_kwh"] for v in vehicles], width=0.4,
               label="requested", color="0.7")
    ax_kwh.bar([i + 0.2 for i in range(len(names))], [v["delivered_kwh"] for v in vehicles], width=0.4,
               label="delivered", color="tab:blue")
    ax_kwh.set_xticks(range(len(names)))
    ax_kwh.set_xticklabels(names)
    ax_kwh.set_ylabel("kWh")
    ax_kwh.set_title("energy per car")
    ax_kwh.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _draw_world(ax, world: dict) -> None:
    """True cars (dashed outlines; unlisted ones in orange), objects in lanes and the people's routes."""
    from ..core.geometry import Pose2D, rect_polygon

    first = {"listed": True, "unlisted": True}
    for car in world.get("cars", []):
        pose = Pose2D(*car["pose"])
        poly = rect_polygon(pose, car["body_m"][0], car["body_m"][1])
        kind = "listed" if car["listed"] else "unlisted"
        label = None
        if first[kind]:
            label = "true car pose" if car["listed"] else "car not in the garage file"
            first[kind] = False
        ax.add_patch(Polygon(poly, closed=True, fill=not car["listed"], ls="--", lw=0.8,
                             ec="tab:orange" if not car["listed"] else "black",
                             fc="tab:orange", alpha=0.6 if not car["listed"] else 1.0, label=label))
    for i, ob in enumerate(world.get("objects", [])):
        pose = Pose2D(*ob["pose"])
        ax.add_patch(Polygon(rect_polygon(pose, ob["size_m"][0], ob["size_m"][1]), closed=True,
                             color="tab:purple", label="object in a lane" if i == 0 else None))
    for i, m in enumerate(world.get("movers", [])):
        xs, ys = zip(*m["waypoints"])
        ax.plot(xs, ys, ":", color="tab:purple", lw=1.0,
                label=("route of a person or a leaving car" if i == 0 else None))
