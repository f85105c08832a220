"""mobicharge-check-garage FILE [FILE ...]: validate garage descriptions.

Prints one line per valid file; a mistake is one line naming the file, the field and the problem (exit 2).
"""
from __future__ import annotations

import argparse
import sys

from ..core.garage import GarageError, load_garage
from ..core.staging import StagingError, staging_pose


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="mobicharge-check-garage", description="Validate garage description files.")
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--robot-size", nargs=2, type=float, default=(1.0, 0.7), metavar=("LENGTH_M", "WIDTH_M"),
                    help="robot footprint used to check the staging poses (default: 1.0 0.7)")
    args = ap.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            g = load_garage(path)
            for v in g.requested_vehicles():
                staging_pose(g, v, *args.robot_size)
        except GarageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        except StagingError as exc:
            print(f"error: {path}: vehicles: {exc}", file=sys.stderr)
            status = 2
            continue
        print(f"{path}: garage '{g.name}' {g.size_m[0]:g} x {g.size_m[1]:g} m, {len(g.spots)} spots, "
              f"{len(g.vehicles)} vehicles, {len(g.requested_vehicles())} requests: ok")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
