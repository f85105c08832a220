"""mobicharge-check-garage FILE [FILE ...]: validate garage descriptions.

For each valid file it prints one line (spots, vehicles, requests) and also checks that the robot can stage beside
every requesting car. A mistake is reported as one line ``error: <file>: <field>: <problem>`` on stderr, never as a
traceback, and the exit status is 2. The robot footprint comes from the URDF unless ``--robot-size`` is given.
``--connector TYPE`` (repeatable, default ccs2) names the inlet types the robot's connector serves: a request from a
car with another inlet type is an error.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence, Tuple

from ..core.garage.garage import DEFAULT_CONNECTORS, INLET_TYPES, Garage, GarageError, load_garage
from ..core.garage.staging import StagingError, staging_pose
from ..core.arm.urdf_model import UrdfError, UrdfModel, default_urdf_path

EXIT_OK = 0
EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mobicharge-check-garage", description="Validate garage description files.")
    ap.add_argument("files", nargs="+", metavar="FILE", help="garage YAML files")
    ap.add_argument("--robot-size", nargs=2, type=float, metavar=("LENGTH_M", "WIDTH_M"),
                    help="robot footprint (m) for the staging check; default: read from the robot's URDF")
    ap.add_argument("--clearance", type=float, default=0.35, metavar="M",
                    help="gap between the robot's side and the car when staged (m, default 0.35)")
    ap.add_argument("--connector", action="append", choices=INLET_TYPES, metavar="TYPE",
                    help=f"an inlet type the robot's connector serves (repeatable; {', '.join(INLET_TYPES)}; "
                         f"default {', '.join(DEFAULT_CONNECTORS)})")
    return ap


def _urdf_footprint() -> Tuple[float, float]:
    return UrdfModel.from_xacro(default_urdf_path()).footprint()


def check_garage(garage: Garage, footprint: Optional[Tuple[float, float]], clearance_m: float = 0.35) -> str:
    """The summary line for a loaded garage after checking that the robot (``footprint`` = length, width in metres;
    needed only when some car has a request) can stage beside every requesting car; GarageError otherwise."""
    for i, v in enumerate(garage.vehicles):
        if v.request is None:
            continue
        if footprint is None:
            raise ValueError("a robot footprint is needed to check the staging poses")
        try:
            staging_pose(garage, v, footprint[0], footprint[1], clearance_m)
        except StagingError as exc:
            raise GarageError(garage.source, f"vehicles[{i}]", f"cannot stage beside '{v.id}': {exc.reason}") from exc
    requests = garage.requested_vehicles()
    return (f"{garage.source}: garage '{garage.name}' {garage.size_m[0]:g} x {garage.size_m[1]:g} m: "
            f"{len(garage.spots)} spots, {len(garage.vehicles)} vehicles, {len(requests)} requests "
            f"({sum(v.request.energy_kwh for v in requests):g} kWh): ok")


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage; report its status instead of leaving
        return int(exc.code) if isinstance(exc.code, int) else EXIT_INVALID
    if any(s <= 0.0 for s in (args.robot_size or ())) or not args.clearance > 0.0:
        print("error: --robot-size and --clearance must be positive metres", file=sys.stderr)
        return EXIT_INVALID
    footprint = tuple(args.robot_size) if args.robot_size else None
    status = EXIT_OK
    for path in args.files:
        try:
            garage = load_garage(path, tuple(args.connector or DEFAULT_CONNECTORS))
            if footprint is None and garage.requested_vehicles():
                footprint = _urdf_footprint()  # only read when needed: xacro is slow to start
            print(check_garage(garage, footprint, args.clearance))
        except GarageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = EXIT_INVALID
        except (UrdfError, OSError) as exc:
            print(f"error: cannot read the robot footprint from the URDF ({exc}); pass --robot-size", file=sys.stderr)
            return EXIT_INVALID
    return status


if __name__ == "__main__":
    sys.exit(main())
