"""Scenario suite: whole missions through the real nodes over DDS in seeded worlds that differ from the robot's belief,
scored against the simulator's ground truth only.

    bench/scenarios.py [--count N] [--variation none|nominal|hard] [--seed S] [--garage FILE] [--demand F]
                       [--jobs 2] [--timeout SECONDS] [--out DIR]

Scenario i uses seed S+i. Without ``--garage`` the scenarios alternate between the default garage and garages made by
the project's generator (rect, L and T shapes in turn); with it, every scenario uses the user's garage. ``--demand F``
scales the requests so that together they ask for F times the pack's usable energy (F > 1 means the robot must go
home and recharge, or decline). Each scenario runs in its own ROS domain, ``--jobs`` at a time (default 2, one per
core).

Scores (truth only, never the robot's own reports, except the reasons it gives for cars it did not serve):
- a car is served when the energy that truly reached it by its departure is within 1 % of its request;
- collisions: steps in which the true footprint touched any true obstacle (people included);
- strandings: scenarios that ended with the robot away from its depot or its pack cut off away from the depot;
- reserve_violations: scenarios in which the pack's true state of charge fell below ``--reserve-soc`` away from the
  depot;
- served_after_departure: cars that received energy after their departure time;
- energized_without_seated: simulator steps with the output enabled and no seated, latched plug;
- energy_created_kwh: the largest (delivered + losses + traction - drawn from the pack) over the scenarios;
- meter_error_max_pct: the robot's meter against the truly delivered energy, worst car;
- realtime_factor: all simulated seconds over the suite's wall time.

The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mobicharge_robot.core.garage.garage import GarageError, load_garage  # noqa: E402
from mobicharge_robot.core.paths import data_path  # noqa: E402

DEFAULT_GARAGE = data_path("config", "garages", "default.yaml")
SHAPES = ("rect", "L", "T")

def _usable_kwh() -> float:
    """The pack's usable energy as the garage generator defines it (one definition: core/garage/generator.py)."""
    from mobicharge_robot.core.garage.generator import energy_defaults_from_config, usable_energy_kwh

    pack, initial_soc, _ = energy_defaults_from_config(data_path("config", "mobicharge.yaml"))
    return usable_energy_kwh(pack, initial_soc)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20, help="number of scenarios (default 20)")
    ap.add_argument("--variation", choices=("none", "nominal", "hard"), default="nominal")
    ap.add_argument("--seed", type=int, default=9001, help="seed of the first scenario (default 9001)")
    ap.add_argument("--garage", help="run every scenario on this garage file")
    ap.add_argument("--demand", type=float, default=None,
                    help="scale requests to this multiple of the pack's usable energy (default: as in the file)")
    ap.add_argument("--jobs", type=int, default=2, help="scenarios at once (default 2)")
    ap.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit per scenario (s, default 600)")
    ap.add_argument("--reserve-soc", type=float, default=0.05,
                    help="true state of charge below which the pack counts as below its reserve (default 0.05)")
    ap.add_argument("--out", default=None, help="folder for the run folders (default: a temporary folder)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one scenario from a JSON spec
    args = ap.parse_args(argv)
    if args.count < 1 or args.jobs < 1:
        ap.error("--count and --jobs must be at least 1")
    if args.demand is not None and not (math.isfinite(args.demand) and args.demand > 0):
        ap.error("--demand must be a positive number")
    return args


# ------------------------------------------------------------------------------------------------- scenarios


def _generated_garage(seed: int, shape: str, folder: str) -> str:
    """A garage from the project's generator, written into ``folder``."""
    from mobicharge_robot.core.garage.generator import generate_garage_file

    return generate_garage_file(os.path.join(folder, f"gen_{shape}_{seed}.yaml"), seed, shape)


def _scaled(garage_file: str, demand: float, folder: str, tag: str) -> str:
    """A copy of the garage with requests scaled to ``demand`` x the usable pack energy (each capped by the room
    in the car's battery)."""
    import yaml

    with open(garage_file, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    requested = [v for v in data.get("vehicles", []) if v.get("request")]
    total = sum(float(v["request"]["energy_kwh"]) for v in requested)
    if total <= 0:
        return garage_file
    k = demand * float(_usable_kwh()) / total  # a numpy float would not dump to YAML
    for v in requested:
        room = float(v["battery"]["capacity_kwh"]) * (1.0 - float(v["battery"]["soc"])) * 0.9
        v["request"]["energy_kwh"] = round(min(room, float(v["request"]["energy_kwh"]) * k), 3)
    path = os.path.join(folder, f"scaled_{tag}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    return path


def plan(args, folder: str):
    specs = []
    for i in range(args.count):
        seed = args.seed + i
        if args.garage:
            garage, name = os.path.abspath(args.garage), os.path.basename(args.garage)
        elif i % 2 == 0:
            garage, name = DEFAULT_GARAGE, "default"
        else:
            shape = SHAPES[(i // 2) % len(SHAPES)]
            garage = _generated_garage(seed, shape, folder)
            name = f"gen_{shape}_{seed}"
        if args.demand is not None:
            garage = _scaled(garage, args.demand, folder, f"{i}")
        specs.append({"index": i, "seed": seed, "garage": garage, "name": name, "variation": args.variation,
                      "timeout": args.timeout, "run_dir": os.path.join(folder, f"scenario_{i:03d}"),
                      "domain_id": 101 + (i % 100)})
    return specs


def run_one(spec: dict) -> dict:
    """One scenario (in its own process: rclpy allows one context per process here)."""
    from mobicharge_robot.tools.monitor import run_mission

    os.makedirs(spec["run_dir"], exist_ok=True)
    wall0 = time.monotonic()
    res = run_mission(garage_file=spec["garage"], run_dir=spec["run_dir"], timeout_s=spec["timeout"],
                      seed=spec["seed"], live=False, record_truth=True, domain_id=spec["domain_id"],
                      variation=spec["variation"])
    out = {"spec": spec, "error": res.error, "events": res.events, "truth": res.truth,
           "summary": res.summary, "wall_s": time.monotonic() - wall0,
           "final_pose": list(res.truth_poses[-1]) if res.truth_poses else None}
    return out


def _run_all(specs, jobs: int):
    results = [None] * len(specs)
    pending = list(specs)
    running = []
    while pending or running:
        while pending and len(running) < jobs:
            spec = pending.pop(0)
            spec_path = os.path.join(os.path.dirname(spec["run_dir"]), f"spec_{spec['index']:03d}.json")
            with open(spec_path, "w", encoding="utf-8") as f:
                json.dump(spec, f)
            out_path = spec_path.replace("spec_", "result_")
            log = open(spec_path.replace(".json", ".log"), "w", encoding="utf-8")
            proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--one", spec_path],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, stdin=subprocess.DEVNULL)
            log.close()
            running.append((proc, spec, out_path, time.monotonic()))
        time.sleep(0.5)
        for item in list(running):
            proc, spec, out_path, t0 = item
            if proc.poll() is None:
                if time.monotonic() - t0 > spec["timeout"] + 120:
                    proc.kill()
                continue
            running.remove(item)
            try:
                with open(out_path, encoding="utf-8") as f:
                    results[spec["index"]] = json.load(f)
            except (OSError, ValueError):
                results[spec["index"]] = {"spec": spec, "error": f"scenario process failed (exit {proc.returncode})",
                                          "events": [], "truth": {}, "summary": {}, "wall_s": 0.0,
                                          "final_pose": None}
            score = score_one(results[spec["index"]])
            print(format_line(score), flush=True)
            results[spec["index"]]["score"] = score
    return results


# ------------------------------------------------------------------------------------------------- scoring


def _f(truth: dict, key: str, default=float("nan")) -> float:
    try:
        return float(truth[key])
    except (KeyError, ValueError, TypeError):
        return default


def score_one(res: dict) -> dict:
    spec, truth, events = res["spec"], res.get("truth") or {}, res.get("events") or []
    garage = load_garage(spec["garage"])
    reasons = {}
    for ev in events:
        if ev.get("event") == "job_failed":
            reasons[ev.get("vehicle")] = _reason_class(ev.get("reason", ""))
    metered = {v["id"]: v.get("delivered_kwh", 0.0) for v in (res.get("summary") or {}).get("vehicles", [])}
    cars = []
    for v in garage.requested_vehicles():
        by_dep = _f(truth, f"car/{v.id}/energy_by_departure_wh", _f(truth, f"car/{v.id}/energy_in_wh", 0.0))
        total = _f(truth, f"car/{v.id}/energy_in_wh", 0.0)
        after = _f(truth, f"car/{v.id}/energy_after_departure_wh", 0.0)
        served = by_dep >= 0.99 * 1000.0 * v.request.energy_kwh
        reason = "" if served else reasons.get(v.id) or ("mission: " + _reason_class(res.get("error") or "")
                                                          if res.get("error") else "not served (no reason given)")
        meter_err = None
        if total > 100.0 and v.id in metered:
            meter_err = 100.0 * abs(1000.0 * metered[v.id] - total) / total
        cars.append({"id": v.id, "served": served, "reason": reason, "true_kwh": total / 1000.0,
                     "meter_err_pct": meter_err, "after_departure_wh": after})
    d = garage.depot.pose
    pose = res.get("final_pose")
    at_depot = pose is not None and math.hypot(pose[0] - d.x, pose[1] - d.y) <= 1.0
    cutoff = truth.get("pack_cutoff", "")
    stranded = (not at_depot) or bool(cutoff and not at_depot)
    return {
        "index": spec["index"], "name": spec["name"], "seed": spec["seed"], "cars": cars,
        "collisions": int(_f(truth, "collisions", 0)), "collision_ids": truth.get("collision_ids", ""),
        "stranded": stranded, "reserve_violation": _f(truth, "min_pack_soc_away", 1.0) < res.get("reserve_soc", 0.05),
        "energized_without_seated": int(_f(truth, "energized_unseated", 0)),
        "energy_created_kwh": _f(truth, "energy_created_wh", float("nan")) / 1000.0,
        "sim_s": _f(truth, "sim_time_s", 0.0), "wall_s": res.get("wall_s", 0.0),
        "stop_reaction_max_s": _f(truth, "stop_reaction_max_s", 0.0),
        "pilot_switch_off_max_s": _f(truth, "pilot_switch_off_max_s", 0.0),
        "error": res.get("error") or "", "truth_missing": not truth,
    }


def _reason_class(reason: str) -> str:
    """A short class for the histogram: the reason up to its first colon-separated detail."""
    reason = (reason or "").strip()
    if not reason:
        return "unknown"
    head = reason.split("\n")[0]
    head = re.sub(r"\(.*", "", head)  # details in brackets (positions, numbers) vary from car to car
    head = re.sub(r"[-+]?\d+(\.\d+)?", "N", head)
    parts = head.split(":")
    return ":".join(parts[:2]).strip()[:90] if len(parts) > 1 else head.strip()[:90]


def format_line(s: dict) -> str:
    served = sum(c["served"] for c in s["cars"])
    errs = [c["meter_err_pct"] for c in s["cars"] if c["meter_err_pct"] is not None]
    failed = "; ".join(f"{c['id']}: {c['reason']}" for c in s["cars"] if not c["served"])
    return (f"#{s['index']:03d} {s['name']:<18} seed {s['seed']:<6} served {served}/{len(s['cars'])} "
            f"collisions {s['collisions']} stranded {'yes' if s['stranded'] else 'no'} "
            f"created {1000 * s['energy_created_kwh']:.3f} Wh meter {max(errs) if errs else 0.0:.3f}% "
            f"sim {s['sim_s']:.0f} s wall {s['wall_s']:.0f} s" + (f" | {failed}" if failed else "")
            + (f" | error: {s['error'].splitlines()[0][:120]}" if s["error"] else ""))


def aggregate(scores, wall_s: float) -> dict:
    cars = [c for s in scores for c in s["cars"]]
    served = sum(c["served"] for c in cars)
    meter = [c["meter_err_pct"] for c in cars if c["meter_err_pct"] is not None]
    created = [s["energy_created_kwh"] for s in scores if math.isfinite(s["energy_created_kwh"])]
    hist = Counter(c["reason"] for c in cars if not c["served"])
    return {
        "served_rate": round(served / len(cars), 4) if cars else 0.0,
        "cars": len(cars), "served": served,
        "collisions": sum(s["collisions"] for s in scores),
        "strandings": sum(s["stranded"] for s in scores),
        "reserve_violations": sum(s["reserve_violation"] for s in scores),
        "served_after_departure": sum(1 for c in cars if c["after_departure_wh"] > 1.0),
        "energized_without_seated": sum(s["energized_without_seated"] for s in scores),
        "energy_created_kwh": round(max(created), 6) if created else None,
        "meter_error_max_pct": round(max(meter), 4) if meter else None,
        "stop_reaction_max_s": round(max(s["stop_reaction_max_s"] for s in scores), 3),
        "pilot_switch_off_max_s": round(max(s["pilot_switch_off_max_s"] for s in scores), 3),
        "realtime_factor": round(sum(s["sim_s"] for s in scores) / wall_s, 2) if wall_s > 0 else 0.0,
        "wall_s": round(wall_s, 1),
        "scenarios": len(scores),
        "scenarios_without_truth": sum(s["truth_missing"] for s in scores),
        "failure_reasons": dict(hist.most_common()),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        with open(args.one, encoding="utf-8") as f:
            spec = json.load(f)
        out = run_one(spec)
        with open(args.one.replace("spec_", "result_"), "w", encoding="utf-8") as f:
            json.dump(out, f)
        return 0
    if args.garage:
        try:
            load_garage(args.garage)
        except GarageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    folder = args.out or tempfile.mkdtemp(prefix="mobicharge-scenarios-")
    os.makedirs(folder, exist_ok=True)
    specs = plan(args, folder)
    print(f"{len(specs)} scenarios, variation '{args.variation}', seeds {args.seed}..{args.seed + args.count - 1}, "
          f"{args.jobs} at a time; run folders in {folder}", flush=True)
    wall0 = time.monotonic()
    results = _run_all(specs, args.jobs)
    wall = time.monotonic() - wall0
    scores = []
    for r in results:
        r["reserve_soc"] = args.reserve_soc
        scores.append(score_one(r))
    agg = aggregate(scores, wall)
    print("failure reasons:")
    for reason, n in agg["failure_reasons"].items():
        print(f"  {n:4d}  {reason}")
    print(f"served {agg['served']}/{agg['cars']} ({100 * agg['served_rate']:.1f}%), collisions {agg['collisions']}, "
          f"strandings {agg['strandings']}, energy created {agg['energy_created_kwh']} kWh, meter error max "
          f"{agg['meter_error_max_pct']}%, stop reaction max {agg['stop_reaction_max_s']} s, pilot switch-off max "
          f"{agg['pilot_switch_off_max_s']} s, real-time factor {agg['realtime_factor']}, wall {agg['wall_s']} s")
    print(json.dumps(agg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
