"""Planner benchmark: the lane planner against a C++ grid A* peer and against the optimal lane-rule grid path.

On one garage level (by default the project's generator's 100 m x 60 m ``rect`` level for ``--seed``, see
``core/garage/generator.py``; ``--shape L|T``, ``--size``; ``--garage FILE`` for a garage file) at 0.05 m per cell,
``--pairs`` seeded start/goal pairs are drawn in free space: start and goal are either a lane position (a drivable
cell with room to turn, heading along the lane, the legal way on a one-way lane) or the staging pose beside a parked
car (``core.garage.staging``). A pair is kept only when the reference below finds a path (it is reachable
under the rules for a robot that may turn in place anywhere on its way, start and goal included: a staging pose
squeezed into the strip between two rows of cars, where a robot that only drives forwards cannot turn, is not
reachable in that sense. For every pair, in the same run and on the same grid:

- ``LanePlanner.plan`` (the production planner) is timed;
- the peer ``pyastar2d`` (C++ A*, 8-connected) is timed on the footprint-inflated grid (cells closer than the
  footprint's circumscribed radius to an obstacle blocked); it knows no lane rules, so it solves an easier problem;
- the reference, an 8-connected grid Dijkstra (scipy) on the lane-restricted, direction-aware grid (the cells that
  ``lanes.LaneRules.query_masks`` allows, inflated by the same radius; a move is allowed only where both cells
  permit its direction), gives the optimal rule-abiding grid path length, to which the planner's path length is
  compared. The reference is not timed.

Figures are wall-clock on this machine; run it pinned to one core with ``taskset -c 0`` for the bar
(other processes on a shared machine disturb them).

Last line: JSON with p50_ms, p95_ms, max_ms, success_rate, length_ratio_p95, peer_p95_ms, p95_ratio_vs_peer.
Bar (issue 13): p95 <= 50 ms, p95_ratio_vs_peer <= 1.0, success_rate = 1.0, length_ratio_p95 <= 1.10.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mobicharge_robot.core.arm.urdf_model import UrdfModel  # noqa: E402
from mobicharge_robot.core.garage.garage import load_garage, parse_garage  # noqa: E402
from mobicharge_robot.core.garage.generator import generate_garage  # noqa: E402
from mobicharge_robot.core.garage.staging import StagingError, staging_pose  # noqa: E402
from mobicharge_robot.core.geometry import Pose2D  # noqa: E402
from mobicharge_robot.core.navigation.lane_planner import LanePlanner  # noqa: E402
from mobicharge_robot.core.navigation.lanes import clearance_field  # noqa: E402
from mobicharge_robot.core.navigation.occupancy import distance_field, occupancy_from_garage  # noqa: E402
from mobicharge_robot.core.navigation.planner import PlannerError  # noqa: E402
from mobicharge_robot.core.paths import data_path  # noqa: E402

RESOLUTION_M = 0.05
INFLATION_MARGIN_M = 0.25  # config/mobicharge.yaml navigation.inflation_margin_m
APPROACH_MARGIN_M = 0.05
_NEIGHBOURS = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


# ---------------------------------------------------------------------- pairs
def lane_positions(planner: LanePlanner, rng, n: int) -> list:
    """``n`` random poses on drivable lane cells with room to turn, heading the legal way along their lane."""
    rules = planner.rules
    ok = planner._field_lane >= planner.track_clearance_m
    rows, cols = np.nonzero(ok)
    out = []
    for i in rng.choice(len(rows), size=n, replace=False):
        x, y = planner.grid.cell_to_world(int(rows[i]), int(cols[i]))
        lanes = [ln for ln in rules.lanes if ln.contains((x, y))]
        ln = lanes[int(rng.integers(len(lanes)))]
        yaw = math.atan2(ln.direction[1], ln.direction[0])
        if not ln.one_way and rng.random() < 0.5:
            yaw += math.pi
        out.append(Pose2D(x, y, math.atan2(math.sin(yaw), math.cos(yaw))))
    return out


def staging_poses(garage, footprint) -> list:
    out = []
    for v in garage.vehicles:
        try:
            out.append(staging_pose(garage, v, footprint[0], footprint[1]))
        except StagingError:
            continue
    return out


# ---------------------------------------------------------------------- reference and peer
class Reference:
    """Optimal 8-connected grid path length under the lane rules (see the module doc)."""

    def __init__(self, planner: LanePlanner, radius_m: float):
        self.p = planner
        self.rules = planner.rules
        self.radius_m = radius_m
        combo = self.rules.lane_combo
        self.permit = {d: self.rules.combo_permits((d[1], d[0]))[combo] for d in _NEIGHBOURS}

    def legal(self, allowed: np.ndarray) -> np.ndarray:
        return clearance_field(~allowed, RESOLUTION_M) >= self.radius_m

    def length(self, start: Pose2D, goal: Pose2D, allowed: np.ndarray) -> float:
        """Metres along the optimal grid path between the start and goal cells; inf when there is none.
        ``allowed``: ``rules.query_masks(start, goal)``."""
        legal = self.legal(allowed)
        grid = self.p.grid
        s = grid.world_to_cell(start.x, start.y)
        g = grid.world_to_cell(goal.x, goal.y)
        if not (legal[s] and legal[g]):
            return math.inf
        h, w = legal.shape
        idx = np.full((h, w), -1, dtype=np.int64)
        idx[legal] = np.arange(int(legal.sum()))
        src, dst, cost = [], [], []
        for dr, dc in _NEIGHBOURS:
            a = legal & self.permit[(dr, dc)]
            ys0, ys1 = max(0, -dr), h - max(0, dr)
            xs0, xs1 = max(0, -dc), w - max(0, dc)
            m = a[ys0:ys1, xs0:xs1] & a[ys0 + dr:ys1 + dr, xs0 + dc:xs1 + dc]
            src.append(idx[ys0:ys1, xs0:xs1][m])
            dst.append(idx[ys0 + dr:ys1 + dr, xs0 + dc:xs1 + dc][m])
            cost.append(np.full(len(src[-1]), RESOLUTION_M * (math.sqrt(2.0) if dr and dc else 1.0), np.float32))
        n = int(legal.sum())
        graph = csr_matrix((np.concatenate(cost), (np.concatenate(src), np.concatenate(dst))), shape=(n, n))
        dist = dijkstra(graph, indices=int(idx[s]))
        return float(dist[idx[g]])


def peer_weights(grid, radius_m: float) -> np.ndarray:
    w = np.ones((grid.height, grid.width), dtype=np.float32)
    w[distance_field(grid) < radius_m] = np.inf
    return w


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--shape", choices=("rect", "L", "T"), default="rect", help="shape of the generated level")
    ap.add_argument("--size", default="100x60", help="size WxH (m) of the generated level")
    ap.add_argument("--show-worst", type=int, default=3, help="print the pairs with the highest length ratios")
    ap.add_argument("--garage", help="garage YAML to use instead of a generated level")
    args = ap.parse_args(argv)
    try:
        import pyastar2d
    except ImportError:
        print("pyastar2d is missing: scripts/bootstrap.sh installs it (requirements.txt)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    if args.garage:
        garage = load_garage(args.garage)
    else:
        try:
            size = tuple(float(v) for v in args.size.lower().split("x"))
            if len(size) != 2:
                raise ValueError
        except ValueError:
            print(f"--size must look like 100x60, got {args.size!r}", file=sys.stderr)
            return 2
        garage = parse_garage(generate_garage(args.seed, shape=args.shape, size=size),
                              f"generated(seed={args.seed}, shape={args.shape}, size={args.size})")
    footprint = UrdfModel.from_xacro(data_path("urdf", "mobicharge.urdf.xacro")).footprint()
    grid = occupancy_from_garage(garage, RESOLUTION_M)
    t0 = time.perf_counter()
    planner = LanePlanner(grid, garage, footprint, inflation_margin_m=INFLATION_MARGIN_M,
                          approach_margin_m=APPROACH_MARGIN_M)
    build_s = time.perf_counter() - t0
    radius = math.hypot(0.5 * footprint[0], 0.5 * footprint[1])  # circumscribed: the robot may turn anywhere
    ref = Reference(planner, radius)
    weights = peer_weights(grid, radius)
    print(f"level {garage.name}: {garage.size_m[0]:g} x {garage.size_m[1]:g} m, {grid.width} x {grid.height} cells, "
          f"{len(garage.lanes)} lanes ({sum(ln.direction == 'one_way' for ln in garage.lanes)} one-way), "
          f"{len(garage.spots)} spots, {len(garage.vehicles)} cars; planner built in {build_s:.2f} s "
          f"({len(planner.tracks)} tracks, {len(planner.nodes)} nodes)")

    stagings = staging_poses(garage, footprint)
    lanes_pool = lane_positions(planner, rng, 400)
    pairs = []
    attempts = 0
    while len(pairs) < args.pairs and attempts < 20 * args.pairs:
        attempts += 1
        s = stagings[int(rng.integers(len(stagings)))] if (stagings and rng.random() < 0.5) else \
            lanes_pool[int(rng.integers(len(lanes_pool)))]
        g = stagings[int(rng.integers(len(stagings)))] if (stagings and rng.random() < 0.7) else \
            lanes_pool[int(rng.integers(len(lanes_pool)))]
        if s.distance_to(g) < 1.0:
            continue
        sc, gc = grid.world_to_cell(s.x, s.y), grid.world_to_cell(g.x, g.y)
        if not (math.isfinite(weights[sc]) and math.isfinite(weights[gc])):
            continue
        length = ref.length(s, g, planner.rules.query_masks(s, g))
        if math.isfinite(length):
            pairs.append((s, g, length))
    print(f"{len(pairs)} reachable pairs from {attempts} draws ({len(stagings)} staging poses in the level)")

    ms, peer_ms, ratios = [], [], []
    ok = 0
    failures = []
    worst = []
    for s, g, ref_len in pairs:
        t = time.perf_counter()
        try:
            path = planner.plan(s, g)
            ms.append(1e3 * (time.perf_counter() - t))
            ok += 1
            ratios.append(path.length_m / ref_len)
            worst.append((path.length_m / ref_len, s, g, path.length_m, ref_len))
        except PlannerError as exc:
            ms.append(1e3 * (time.perf_counter() - t))
            failures.append(f"({s.x:.2f}, {s.y:.2f}, {s.yaw:.2f}) -> ({g.x:.2f}, {g.y:.2f}, {g.yaw:.2f}): "
                            f"{exc.code} {exc}")
        sc, gc = grid.world_to_cell(s.x, s.y), grid.world_to_cell(g.x, g.y)
        t = time.perf_counter()
        pyastar2d.astar_path(weights, sc, gc, allow_diagonal=True)
        peer_ms.append(1e3 * (time.perf_counter() - t))
    for f in failures:
        print("failed:", f)
    for r, s, g, a, b in sorted(worst, key=lambda w: -w[0])[:args.show_worst]:
        print(f"length ratio {r:.3f}: ({s.x:.2f}, {s.y:.2f}, {s.yaw:.2f}) -> ({g.x:.2f}, {g.y:.2f}, {g.yaw:.2f}) "
              f"{a:.2f} m vs {b:.2f} m")
    ms, peer_ms = np.array(ms), np.array(peer_ms)
    result = {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "max_ms": round(float(ms.max()), 2),
        "success_rate": round(ok / len(pairs), 4),
        "length_ratio_p95": round(float(np.percentile(ratios, 95)), 4) if ratios else None,
        "peer_p95_ms": round(float(np.percentile(peer_ms, 95)), 2),
        "p95_ratio_vs_peer": round(float(np.percentile(ms, 95) / np.percentile(peer_ms, 95)), 3),
    }
    print(f"planner: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms, "
          f"success {ok}/{len(pairs)}; length vs optimal lane-rule grid path: median "
          f"{float(np.median(ratios)) if ratios else float('nan'):.3f}, p95 {result['length_ratio_p95']}, "
          f"max {max(ratios) if ratios else float('nan'):.3f}")
    print(f"peer pyastar2d (no lane rules): p50 {float(np.percentile(peer_ms, 50)):.2f} ms, "
          f"p95 {result['peer_p95_ms']} ms")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
