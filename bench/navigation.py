"""Navigation benchmark: seeded missions through the real nodes (loopback simulator, localization, navigation) over
DDS, scored against the simulator's ground truth only.

    bench/navigation.py [--count 100] [--variation hard] [--seed 7001] [--cars 2] [--jobs 2] [--garage FILE]
                        [--timeout SECONDS] [--out DIR]

Mission i uses seed S+i: depot -> the staging poses of ``--cars`` random requesting cars (the poses the mission
manager would send, computed from the garage file) -> depot. Without ``--garage`` missions alternate between the
default garage and garages from the project's generator (rect, L and T shapes in turn) where the generator is
installed. Each mission runs in its own ROS domain, ``--jobs`` at a time.

Scores:
- success_rate: missions whose every leg succeeded;
- collisions: simulator steps in which the true footprint touched a true obstacle (people included), summed;
- staging_lateral_p95_m / staging_yaw_p95_deg: the robot's true pose after a staging leg against the staging pose
  computed (``core/garage/staging.staging_pose``) from the car's true pose, body and inlet (``sim/truth/world``):
  offset along the staging pose's y axis (towards the car) and yaw;
- localization_err_p95_m / _deg: ``amcl_pose`` against the true pose at the same stamp;
- stop_reaction_p95_s: the simulator's truth (``stop_reaction_max_s``: from a person or moving car entering the true
  footprint plus 0.3 m in the travel direction to a command at or below 0.02 m/s, sim time); each mission gives its
  worst event, the figure is the 95th percentile over the missions with events (``stop_reaction_max_s`` the worst);
  ``stop_reaction_scan_p95_s`` measures the node alone: from a scan that shows a return in the stop zone while the
  robot drives (> 0.2 m/s) to the first ``cmd_vel`` at or below 0.02 m/s as received by the benchmark;
- spot_incursions: true-pose samples (2 Hz) with the robot's centre inside a parking spot other than those within
  3 m of the leg's goal (the staging area);
- controller_loop_p99_ms: the navigation node's control loop, CPU time of its thread, worst mission;
  controller_loop_wall_p99_ms the same in wall time (it includes waiting for the GIL and for the shared cores).

Timings share the machine with whatever else runs. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from mobicharge_robot.core.garage.garage import GarageError, Inlet, load_garage  # noqa: E402
from mobicharge_robot.core.garage.staging import StagingError, staging_pose  # noqa: E402
from mobicharge_robot.core.geometry import Pose2D, point_in_polygon, wrap_angle  # noqa: E402
from mobicharge_robot.core.paths import data_path  # noqa: E402

DEFAULT_GARAGE = data_path("config", "garages", "default.yaml")
SHAPES = ("rect", "L", "T")
CLEARANCE_M = 0.35  # mission_manager's staging_clearance_m default
FOOTPRINT = (1.0, 0.7)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100, help="number of missions (default 100)")
    ap.add_argument("--variation", choices=("none", "nominal", "hard"), default="hard")
    ap.add_argument("--seed", type=int, default=7001, help="seed of the first mission (default 7001)")
    ap.add_argument("--cars", type=int, default=2, help="cars visited per mission (default 2)")
    ap.add_argument("--garage", help="run every mission on this garage file")
    ap.add_argument("--jobs", type=int, default=2, help="missions at once (default 2)")
    ap.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit per mission (s, default 600)")
    ap.add_argument("--out", help="folder for logs and per-mission results (default: a temporary folder)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run one mission
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.count < 1 or args.jobs < 1 or args.cars < 1:
        ap.error("--count, --jobs and --cars must be positive")
    return args


# ----------------------------------------------------------------------------------------------- one mission
def _true_staging(garage, car: dict):
    """The staging pose from a car's true pose, body and inlet (truth JSON), or None when none fits."""
    v = garage.vehicle(car["id"])
    inlet = Inlet(**{k: car["inlet"][k] for k in car["inlet"]})
    true_v = replace(v, length_m=car["body_m"][0], width_m=car["body_m"][1], height_m=car["body_m"][2],
                     inlet=inlet)
    x, y, yaw = car["pose"]
    spot = replace(garage.spot(v.spot), center=(x, y), yaw_rad=yaw)
    alone = replace(garage, vehicles=(true_v,), spots=(spot,), pillars=(), zones=())
    try:
        return staging_pose(alone, true_v, FOOTPRINT[0], FOOTPRINT[1], CLEARANCE_M, margin_m=0.0)
    except StagingError:
        return None


def run_one(args) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticStatus
    from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import LaserScan
    from std_msgs.msg import String

    from mobicharge_robot.core.navigation.safety import StopZone, scan_points
    from mobicharge_robot.nodes.ros_common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, pose2d_to_msg, status_values
    from mobicharge_robot.tools.stack import NODES, start_stack

    garage = load_garage(args.garage)
    rng = np.random.default_rng(args.seed)
    candidates = []
    # Requesting cars: the world keeps their staging areas free (another car's may hold an unlisted car).
    for v in garage.requested_vehicles():
        try:
            candidates.append((v, staging_pose(garage, v, FOOTPRINT[0], FOOTPRINT[1], CLEARANCE_M)))
        except StagingError:
            pass
    picks = [candidates[i] for i in rng.choice(len(candidates), size=min(args.cars, len(candidates)),
                                                 replace=False)] if candidates else []
    legs = [(v.id, pose) for v, pose in picks] + [("depot", garage.depot.pose)]

    out_dir = args.out
    nodes = [n for n in NODES if n[1] in ("loopback_sim", "localization", "navigation")]
    overrides = {"loopback_sim": {"garage_file": args.garage, "seed": args.seed, "variation": args.variation,
                                  "rtf_drive": 10.0},
                 "localization": {"garage_file": args.garage}, "navigation": {"garage_file": args.garage}}
    rclpy.init()
    node = Node("navigation_bench", parameter_overrides=[Parameter("use_sim_time", value=True)])
    d = {"statuses": [], "truth": [], "amcl": {}, "cmds": [], "world": None, "truth_status": None, "loop": 0.0,
         "loop_wall": 0.0, "reactions": [], "pending": None}
    laser = Pose2D(0.42, 0.0, 0.0)
    zone = StopZone(FOOTPRINT[0], FOOTPRINT[1], ahead_m=0.30)

    def now():
        return node.get_clock().now().nanoseconds * 1e-9

    def on_status(m):
        d["statuses"].append(m)
        vals = status_values(m)
        if vals.get("controller_loop_p99_ms"):
            d["loop"] = max(d["loop"], float(vals["controller_loop_p99_ms"]))
        if vals.get("controller_loop_wall_p99_ms"):
            d["loop_wall"] = max(d["loop_wall"], float(vals["controller_loop_wall_p99_ms"]))

    def stamp(h):
        return h.stamp.sec + 1e-9 * h.stamp.nanosec

    def pose_of(p):
        return Pose2D(p.position.x, p.position.y, 2.0 * math.atan2(p.orientation.z, p.orientation.w))

    def on_cmd(m):
        t = now()
        d["cmds"].append((t, m.linear.x, m.angular.z))
        if d["pending"] is not None and abs(m.linear.x) <= 0.02:
            d["reactions"].append(t - d["pending"])
            d["pending"] = None

    def on_scan(m):
        if not d["cmds"] or d["pending"] is not None:
            return
        _, v, w = d["cmds"][-1]
        if v <= 0.2:
            return
        pts = scan_points(np.asarray(m.ranges, float), m.angle_min, m.angle_increment, laser, m.range_min,
                          m.range_max)
        if np.any(zone.mask(pts, v, w)):
            d["pending"] = stamp(m.header)

    node.create_subscription(DiagnosticStatus, "navigate/status", on_status, LATCHED_QOS)
    node.create_subscription(PoseStamped, "sim/truth/robot_pose",
                             lambda m: d["truth"].append((stamp(m.header), pose_of(m.pose))), RELIABLE_QOS)
    node.create_subscription(PoseWithCovarianceStamped, "amcl_pose",
                             lambda m: d["amcl"].__setitem__(round(stamp(m.header), 3), pose_of(m.pose.pose)),
                             RELIABLE_QOS)
    node.create_subscription(String, "sim/truth/world", lambda m: d.__setitem__("world", json.loads(m.data)),
                             LATCHED_QOS)
    node.create_subscription(DiagnosticStatus, "sim/truth/status", lambda m: d.__setitem__("truth_status", m),
                             LATCHED_QOS)
    node.create_subscription(Twist, "cmd_vel", on_cmd, RELIABLE_QOS)
    node.create_subscription(LaserScan, "scan", on_scan, SENSOR_QOS)
    goal_pub = node.create_publisher(PoseStamped, "goal_pose", RELIABLE_QOS)
    env = dict(os.environ)
    stack = start_stack(os.path.join(out_dir, "logs"), env, overrides=overrides, nodes=nodes)
    result = {"seed": args.seed, "garage": args.garage, "legs": [], "error": ""}
    wall_end = time.monotonic() + args.timeout

    def spin_until(pred, timeout_wall):
        end = min(wall_end, time.monotonic() + timeout_wall)
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
            if pred():
                return True
            if stack.dead():
                raise RuntimeError(f"node(s) died: {stack.dead()}")
        return False

    try:
        if not spin_until(lambda: d["statuses"] and status_values(d["statuses"][-1]).get("localized") == "True",
                          90.0):
            raise RuntimeError("navigation never became localized")
        seq = 0
        for target, goal in legs:
            seq += 1
            msg = pose2d_to_msg(goal, "map", node.get_clock().now().to_msg())
            msg.header.stamp.nanosec = (msg.header.stamp.nanosec + seq) % 1_000_000_000
            goal_id = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
            n_truth = len(d["truth"])
            goal_pub.publish(msg)

            def finished():
                return [s for s in d["statuses"] if s.hardware_id == goal_id and s.message in ("succeeded", "failed")]

            spin_until(lambda: bool(finished()), 400.0)
            res = finished()
            leg = {"target": target, "ok": bool(res) and res[-1].message == "succeeded",
                   "code": status_values(res[-1]).get("code", "") if res else "TIMEOUT",
                   "reason": status_values(res[-1]).get("reason", "") if res else "no result in time"}
            t_done = now()
            spin_until(lambda: d["truth"] and d["truth"][-1][0] > t_done + 0.05, 10.0)
            leg["truth_range"] = (n_truth, len(d["truth"]))
            leg["goal"] = [goal.x, goal.y, goal.yaw]
            if leg["ok"] and target != "depot" and d["world"] is not None:
                car = next((c for c in d["world"]["cars"] if c["id"] == target), None)
                true_goal = _true_staging(garage, car) if car else None
                if true_goal is not None:
                    final = d["truth"][-1][1]
                    rel = true_goal.inverse().compose(final)
                    leg["staging_lateral_m"] = abs(rel.y)
                    leg["staging_longitudinal_m"] = abs(rel.x)
                    leg["staging_yaw_deg"] = abs(math.degrees(wrap_angle(rel.yaw)))
            result["legs"].append(leg)
            if not leg["ok"] and target == "depot":
                break
    except RuntimeError as exc:
        result["error"] = str(exc)
    finally:
        ts = d["truth_status"]
        tv = status_values(ts) if ts is not None else {}
        result["collisions"] = int(tv.get("collisions", "0") or 0)
        result["collision_ids"] = tv.get("collision_ids", "")
        result["stop_reaction_max_s"] = float(tv.get("stop_reaction_max_s", "0") or 0.0)
        result["stop_events"] = int(tv.get("stop_events", "0") or 0)
        result["world_cars"] = [c for c in (d["world"] or {}).get("cars", [])
                                if c["id"] in {leg["target"] for leg in result["legs"]}]
        node.destroy_node()
        rclpy.try_shutdown()
        stack.stop()

    loc_m, loc_deg = [], []
    for t, p in d["truth"]:
        est = d["amcl"].get(round(t, 3))
        if est is not None:
            loc_m.append(math.hypot(est.x - p.x, est.y - p.y))
            loc_deg.append(abs(math.degrees(wrap_angle(est.yaw - p.yaw))))
    incursions = 0
    for leg in result["legs"]:
        gx, gy, _ = leg["goal"]
        spots = [s for s in garage.spots if math.hypot(s.center[0] - gx, s.center[1] - gy) > 3.0]
        for _, p in d["truth"][leg["truth_range"][0]:leg["truth_range"][1]]:
            incursions += sum(1 for s in spots if point_in_polygon((p.x, p.y), s.polygon))
    result.update(localization_m=loc_m, localization_deg=loc_deg, reactions=d["reactions"],
                  spot_incursions=incursions, controller_loop_p99_ms=d["loop"],
                  controller_loop_wall_p99_ms=d["loop_wall"],
                  success=bool(result["legs"]) and all(leg["ok"] for leg in result["legs"])
                  and len(result["legs"]) == len(legs) and not result["error"])
    return result


# ----------------------------------------------------------------------------------------------- the suite
def _generated_garage(seed: int, shape: str, folder: str) -> str:
    """A garage from the project's generator, written into ``folder``."""
    from mobicharge_robot.core.garage.generator import generate_garage_file

    return generate_garage_file(os.path.join(folder, f"generated_{shape}_{seed}.yaml"), seed, shape)


def _p(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.one:
        res = run_one(args)
        with open(args.result, "w", encoding="utf-8") as f:
            json.dump(res, f)
        return 0
    if args.garage:
        try:
            load_garage(args.garage)
        except GarageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    out = args.out or tempfile.mkdtemp(prefix="nav_bench_")
    os.makedirs(out, exist_ok=True)
    # Domains above the test suite's 1..100, so that a test session on the same machine does not cross-talk.
    import random

    base_domain = random.SystemRandom().randint(110, 230 - args.jobs)
    plan = []
    generated = 0
    for i in range(args.count):
        seed = args.seed + i
        garage = args.garage
        if garage is None:
            garage = DEFAULT_GARAGE
            if i % 2 == 1:
                garage = _generated_garage(seed, SHAPES[generated % len(SHAPES)], out)
                generated += 1
        plan.append((i, seed, garage))
    t0 = time.monotonic()
    running, results = [], []
    queue = list(plan)
    slots = list(range(args.jobs))
    while queue or running:
        while queue and slots:
            i, seed, garage = queue.pop(0)
            slot = slots.pop(0)
            mdir = os.path.join(out, f"mission_{i:03d}")
            os.makedirs(mdir, exist_ok=True)
            env = dict(os.environ, ROS_DOMAIN_ID=str(base_domain + slot), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                       ROS_LOCALHOST_ONLY="1", PYTHONUNBUFFERED="1")
            cmd = [sys.executable, os.path.abspath(__file__), "--one", "--seed", str(seed), "--garage", garage,
                   "--variation", args.variation, "--cars", str(args.cars), "--timeout", str(args.timeout),
                   "--out", mdir, "--result", os.path.join(mdir, "result.json")]
            log = open(os.path.join(mdir, "bench.log"), "w", encoding="utf-8")
            running.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), slot, i, mdir,
                            time.monotonic()))
            log.close()
        time.sleep(0.5)
        for item in list(running):
            proc, slot, i, mdir, started = item
            if proc.poll() is None and time.monotonic() - started < args.timeout + 60.0:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            running.remove(item)
            slots.append(slot)
            try:
                with open(os.path.join(mdir, "result.json"), encoding="utf-8") as f:
                    res = json.load(f)
            except (OSError, ValueError):
                res = {"seed": plan[i][1], "garage": plan[i][2], "success": False, "error": "no result",
                       "legs": [], "collisions": 0, "localization_m": [], "localization_deg": [], "reactions": [],
                       "spot_incursions": 0, "controller_loop_p99_ms": 0.0}
            results.append(res)
            legs = " ".join(f"{leg['target']}:{'ok' if leg['ok'] else leg['code']}" for leg in res["legs"])
            print(f"mission {i:3d} seed {res['seed']} {os.path.basename(res['garage'])}: "
                  f"{'ok' if res['success'] else 'FAILED'} {legs} collisions={res['collisions']} "
                  f"{res.get('error', '')}", flush=True)

    lat = [leg["staging_lateral_m"] for r in results for leg in r["legs"] if "staging_lateral_m" in leg]
    lon = [leg["staging_longitudinal_m"] for r in results for leg in r["legs"] if "staging_longitudinal_m" in leg]
    yaw = [leg["staging_yaw_deg"] for r in results for leg in r["legs"] if "staging_yaw_deg" in leg]
    loc_m = [x for r in results for x in r["localization_m"]]
    loc_deg = [x for r in results for x in r["localization_deg"]]
    reactions = [x for r in results for x in r["reactions"]]
    truth_reactions = [r.get("stop_reaction_max_s", 0.0) for r in results if r.get("stop_events", 0) > 0]
    failures = [f"seed {r['seed']}: " + (r.get("error") or "; ".join(f"{leg['target']} {leg['code']} {leg['reason']}"
                                                                     for leg in r["legs"] if not leg["ok"]))
                for r in results if not r["success"]]
    for f in failures:
        print("  failed:", f)
    summary = {
        "missions": len(results),
        "variation": args.variation,
        "generated_garages": generated,
        "success_rate": sum(r["success"] for r in results) / len(results),
        "collisions": int(sum(r["collisions"] for r in results)),
        "staging_lateral_p95_m": _p(lat, 95),
        "staging_longitudinal_p95_m": _p(lon, 95),
        "staging_yaw_p95_deg": _p(yaw, 95),
        "staging_samples": len(lat),
        "localization_err_p95_m": _p(loc_m, 95),
        "localization_err_p95_deg": _p(loc_deg, 95),
        "localization_samples": len(loc_m),
        "stop_reaction_p95_s": _p(truth_reactions, 95),
        "stop_reaction_max_s": max(truth_reactions, default=float("nan")),
        "stop_events": int(sum(r.get("stop_events", 0) for r in results)),
        "stop_reaction_scan_p95_s": _p(reactions, 95),
        "stop_events_scan": len(reactions),
        "spot_incursions": int(sum(r["spot_incursions"] for r in results)),
        "controller_loop_p99_ms": max((r["controller_loop_p99_ms"] for r in results), default=float("nan")),
        "controller_loop_wall_p99_ms": max((r.get("controller_loop_wall_p99_ms", 0.0) for r in results),
                                           default=float("nan")),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    print(f"results in {out}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
