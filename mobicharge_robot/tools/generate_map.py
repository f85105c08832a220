"""mobicharge-generate-map GARAGE.yaml -o maps/NAME: the Nav2 map_server pair (NAME.pgm + NAME.yaml) of a garage.

The grid is the one the builtin navigation plans on (``core/navigation/occupancy.py``: walls, pillars, parked cars and
keep-out zones over the garage's ``size_m``), written with ``write_map_server``; this tool only adds the command line.
Parked cars are in the map because they are in the garage file; Nav2's obstacle layer clears nothing from a static
map, so a car that leaves still blocks its spot in the map until the map is regenerated.

Exit status: 0 written, 2 for a bad garage file or output path (one ``error: ...`` line, no traceback).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence, Tuple

from ..core.garage.garage import GarageError, load_garage
from ..core.navigation.occupancy import OccupancyError, occupancy_from_garage, write_map_server


def write_map(garage_path: str, output: str, resolution_m: float = 0.05) -> Tuple[str, str]:
    """Write ``<output>.pgm`` and ``<output>.yaml``; returns both paths. GarageError, OccupancyError or OSError."""
    base = output[:-5] if output.endswith(".yaml") else output
    if not os.path.basename(base):
        raise OccupancyError(f"output '{output}' names a directory, not a map (use maps/NAME)")
    garage = load_garage(garage_path)
    grid = occupancy_from_garage(garage, resolution_m)
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    pgm, yml = base + ".pgm", base + ".yaml"
    write_map_server(grid, pgm, yml, os.path.basename(pgm))
    return pgm, yml


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mobicharge-generate-map",
                                 description="Write the Nav2 map_server map (.pgm + .yaml) of a garage description.")
    ap.add_argument("garage", metavar="GARAGE.yaml", help="garage description")
    ap.add_argument("-o", "--output", required=True, metavar="maps/NAME",
                    help="map path without extension (NAME.pgm and NAME.yaml are written)")
    ap.add_argument("--resolution", type=float, default=0.05, metavar="M", help="cell size in metres (default 0.05)")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    if not 0.005 <= args.resolution <= 1.0:
        print(f"error: --resolution {args.resolution:g} m is outside 0.005..1.0", file=sys.stderr)
        return 2
    try:
        pgm, yml = write_map(args.garage, args.output, args.resolution)
    except (GarageError, OccupancyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {exc.filename or args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {pgm} and {yml}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
