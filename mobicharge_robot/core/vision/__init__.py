"""Charge-port vision: inlet geometry, the pinhole camera model and the port detector."""
from .camera import CameraInfoError, CameraModel, default_wrist_camera
from .debug_draw import draw_detection
from .inlets import InletConfigError, InletModel, data_path, load_inlets
from .joint_history import JointHistory
from .port_detector import Detection, PortNotFound, PortTracker, detect_port

__all__ = ['CameraInfoError', 'CameraModel', 'Detection', 'InletConfigError', 'InletModel', 'JointHistory',
           'PortNotFound', 'PortTracker', 'data_path', 'default_wrist_camera', 'detect_port', 'draw_detection',
           'load_inlets']
