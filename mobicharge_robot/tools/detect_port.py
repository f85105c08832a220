"""``mobicharge-detect-port``: find a charge inlet in one image file and print its pose in the camera frame.

    mobicharge-detect-port IMAGE --camera-info CAMERA.yaml [--inlet ccs2|type2|ccs1] [--json]
                           [--debug-image OUT.png]

The pose is ``T_cam_inlet``: the inlet frame (origin at the centre of the AC pin circle on the face plane, x to the
right and y up as seen facing the inlet, z out of the face; doc/architecture.md) in the camera's optical frame
(metres; quaternion x y z w). ``--debug-image`` writes the image with the found holes and the inlet's axes drawn
(x red, y green, z blue), or the reason nothing was found. Exit status: 0 found, 1 not found (the reason is
printed), 2 bad input (unreadable image, bad camera YAML, bad inlet file, unwritable debug image).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

import cv2

from ..core.vision.camera import CameraInfoError, CameraModel
from ..core.geometry import matrix_to_quaternion
from ..core.vision.inlets import InletConfigError, load_inlets
from ..core.vision.debug_draw import draw_detection
from ..core.vision.port_detector import PortNotFound, detect_port

EXIT_FOUND, EXIT_NOT_FOUND, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with our 'bad input' status (argparse's own is also 2)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _parser(inlet_names: List[str]) -> argparse.ArgumentParser:
    p = _Parser(prog="mobicharge-detect-port",
                description="Detect a vehicle charge inlet in an image and print its pose in the camera frame.")
    p.add_argument("image", help="image file (PNG, JPEG, ...)")
    p.add_argument("--camera-info", required=True, metavar="CAMERA.yaml",
                   help="ROS camera calibration YAML (camera_calibration_parsers format)")
    p.add_argument("--inlet", default="ccs2", choices=inlet_names, help="inlet type (default: ccs2)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--debug-image", metavar="OUT.png",
                   help="write the image with the found holes and the inlet's axes drawn on it")
    return p


def _write_debug(path: str, rgb, camera, det, text: str) -> bool:
    out = draw_detection(rgb, camera, det, text)
    try:
        ok = cv2.imwrite(path, cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    except cv2.error as exc:
        print(f"error: cannot write debug image '{path}': {exc}", file=sys.stderr)
        return False
    if not ok:
        print(f"error: cannot write debug image '{path}' (unknown extension or unwritable folder)", file=sys.stderr)
    return bool(ok)


def main(argv: Optional[List[str]] = None) -> int:
    try:
        inlets = load_inlets()
    except InletConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args = _parser(sorted(inlets)).parse_args(argv)

    try:
        camera = CameraModel.from_ros_yaml(args.camera_info)
    except CameraInfoError as exc:
        print(f"error: bad camera info: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        print(f"error: cannot read image '{args.image}' (missing, unreadable or not an image)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if bgr.shape[1] != camera.width or bgr.shape[0] != camera.height:
        print(f"error: image is {bgr.shape[1]}x{bgr.shape[0]} but the camera info says "
              f"{camera.width}x{camera.height}", file=sys.stderr)
        return EXIT_BAD_INPUT

    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        det = detect_port(rgb, camera, inlets[args.inlet])
    except PortNotFound as exc:
        if args.debug_image and not _write_debug(args.debug_image, rgb, camera, None, f"not found: {exc.reason}"):
            return EXIT_BAD_INPUT
        if args.json:
            print(json.dumps({"found": False, "reason": exc.reason}))
        else:
            print(f"no {args.inlet} inlet found: {exc.reason}")
        return EXIT_NOT_FOUND

    if args.debug_image and not _write_debug(args.debug_image, rgb, camera, det,
                                             f"{args.inlet}: {det.n_points} holes, rms "
                                             f"{det.reprojection_error_px:.2f} px"):
        return EXIT_BAD_INPUT
    t = [float(v) for v in det.T_cam_inlet[:3, 3]]
    q = list(matrix_to_quaternion(det.T_cam_inlet[:3, :3]))
    if args.json:
        print(json.dumps({"found": True, "inlet": args.inlet, "translation_m": t, "quaternion_xyzw": q,
                          "reprojection_error_px": float(det.reprojection_error_px),
                          "confidence": float(det.confidence)}))
    else:
        print(f"{args.inlet} inlet found in frame {camera.frame_id} ({det.n_points} holes)")
        print("translation (m):      {:.4f} {:.4f} {:.4f}".format(*t))
        print("quaternion (x y z w): {:.4f} {:.4f} {:.4f} {:.4f}".format(*q))
        print(f"reprojection error:   {det.reprojection_error_px:.3f} px")
        print(f"confidence:           {det.confidence:.2f}")
    return EXIT_FOUND


if __name__ == "__main__":
    raise SystemExit(main())
