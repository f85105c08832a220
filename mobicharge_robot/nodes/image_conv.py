"""sensor_msgs/Image <-> numpy without cv_bridge (not available on every install)."""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


class ImageFormatError(ValueError):
    """The image message cannot be read (unsupported encoding or inconsistent size)."""


def image_to_rgb(msg: Image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from an 8-bit image message."""
    ch = _CHANNELS.get(msg.encoding)
    if ch is None:
        raise ImageFormatError(f"unsupported encoding '{msg.encoding}' (supported: {sorted(_CHANNELS)})")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0 or step < w * ch or len(msg.data) < h * step:
        raise ImageFormatError(f"inconsistent image: {w}x{h}, step {step}, {len(msg.data)} bytes")
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)[: h * step].reshape(h, step)[:, : w * ch]
    img = buf.reshape(h, w, ch)
    if msg.encoding == "mono8":
        return np.repeat(img, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        return np.ascontiguousarray(img[:, :, 2::-1])
    return np.ascontiguousarray(img[:, :, :3])


def rgb_to_image(rgb: np.ndarray, header=None) -> Image:
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg
