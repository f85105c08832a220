"""The default demo: the robot serves every car with a charge request in the garage, then returns to its depot.

    mobicharge-demo [--garage FILE] [--out DIR] [--timeout SECONDS] [--seed N] [--variation none|nominal|hard]

It starts the loopback simulator and the real nodes as processes on a private ROS domain, shows live progress,
prints a summary table and writes ``runs/<timestamp>/summary.json``, ``events.jsonl`` and ``report.png``.
Exit status: 0 when every car was served and the robot is back at the depot, 1 otherwise, 2 for a usage error.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import datetime

from ..core.garage.garage import GarageError, load_garage
from ..core.paths import data_path


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="mobicharge-demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--garage", default=data_path("config", "garages", "default.yaml"),
                    help="garage description YAML (default: config/garages/default.yaml)")
    ap.add_argument("--out", default="runs", help="directory for the run folder (default: runs)")
    ap.add_argument("--timeout", type=float, default=300.0, help="wall-clock limit in seconds (default: 300)")
    ap.add_argument("--seed", type=int, default=1, help="simulator seed: the true world and the noise (default: 1)")
    ap.add_argument("--variation", choices=("none", "nominal", "hard"), default="nominal",
                    help="how far the simulated world differs from the garage file (default: nominal)")
    ap.add_argument("--quiet", action="store_true", help="no live progress line")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        garage = load_garage(args.garage)
    except GarageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not garage.requested_vehicles():
        print(f"error: {args.garage}: no vehicle has a request; nothing to do", file=sys.stderr)
        return 2
    run_dir = os.path.join(args.out, datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(run_dir, exist_ok=True)

    from .monitor import run_mission  # imports rclpy: after argument checks, so --help stays fast

    print(f"mobicharge demo: garage '{garage.name}', {len(garage.requested_vehicles())} cars requested energy; "
          f"world variation '{args.variation}' (seed {args.seed}); logs in {run_dir}/")
    try:
        result = run_mission(garage_file=os.path.abspath(args.garage), run_dir=run_dir, timeout_s=args.timeout,
                             seed=args.seed, live=not args.quiet, variation=args.variation)
    except KeyboardInterrupt:
        print(f"\ninterrupted: every node was stopped; logs in {run_dir}/", file=sys.stderr)
        return 130
    summary = result.summary
    with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print()
    print(format_table(summary))
    if result.error:
        print(f"\nmission did not complete: {result.error}", file=sys.stderr)
    try:
        from .report import write_report

        world = None
        try:
            with open(os.path.join(run_dir, "world.json"), encoding="utf-8") as f:
                world = json.load(f)  # the simulator's truth, drawn over the belief: a report, not an input
        except (OSError, ValueError):
            pass
        write_report(result, os.path.join(run_dir, "report.png"), garage, world)
        print(f"report: {os.path.join(run_dir, 'report.png')}")
    except (ImportError, OSError, ValueError) as exc:
        print(f"warning: no report plot: {exc}", file=sys.stderr)
    print(f"summary: {os.path.join(run_dir, 'summary.json')}")
    ok = not result.error and summary["vehicles"] and all(v["served"] for v in summary["vehicles"])
    return 0 if ok else 1


def format_table(summary: dict) -> str:
    phases = ["navigating", "locating_port", "plugging", "charging", "unplugging"]
    head = f"{'vehicle':<10} {'spot':<6} {'req kWh':>8} {'kWh':>8} {'served':>6} " + \
        " ".join(f"{p[:10]:>10}" for p in phases)
    lines = [head, "-" * len(head)]
    for v in summary["vehicles"]:
        ph = v.get("phase_s", {})
        lines.append(f"{v['id']:<10} {v['spot']:<6} {v['requested_kwh']:>8.2f} {v['delivered_kwh']:>8.3f} "
                     f"{'yes' if v['served'] else 'NO':>6} " + " ".join(f"{ph.get(p, 0.0):>9.1f}s" for p in phases))
    lines.append("-" * len(head))

    def pct(x):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"

    lines.append(f"pack state of charge: {pct(summary.get('pack_soc_start'))} -> {pct(summary.get('pack_soc_end'))}"
                 f"   distance driven: {summary.get('distance_m', 0.0):.1f} m"
                 f"   sim time: {summary.get('sim_s', 0.0):.0f} s   wall time: {summary.get('wall_s', 0.0):.1f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
