"""The connector arm: URDF model and kinematics (Pinocchio), collision and reach checks (coal), trajectories (ruckig),
and the force-guided insertion."""
from .collision import (ArmCollisionChecker, Box, MotionInCollision, ReachReport, car_box_from_inlet, inlet_in_reach,
                        plan_free_joint_motion)
from .insertion import (STOWED_POSITIONS, InsertionController, InsertionFailed, InsertionMonitor, InsertionParams,
                        InsertionStep, camera_view_candidates, camera_view_tip_pose, seated_tip_pose, tip_pose_on_axis)
from .kinematics import FrameNotOnChain, IKError, NoIKSolution, OutOfReach, rotation_from_vector, rotation_vector
from .trajectory import JointTrajectory, PathDiscontinuity, TrajectoryError, interpolate_pose, plan_joint_motion, plan_linear_motion, sample
from .urdf_model import UrdfError, UrdfModel, default_urdf_path

__all__ = ['ArmCollisionChecker', 'Box', 'FrameNotOnChain', 'IKError', 'InsertionController', 'InsertionFailed',
           'InsertionMonitor', 'InsertionParams', 'InsertionStep', 'JointTrajectory', 'MotionInCollision',
           'NoIKSolution', 'OutOfReach', 'PathDiscontinuity', 'ReachReport', 'STOWED_POSITIONS', 'TrajectoryError',
           'UrdfError', 'UrdfModel', 'camera_view_candidates', 'camera_view_tip_pose', 'car_box_from_inlet',
           'default_urdf_path', 'inlet_in_reach', 'interpolate_pose', 'plan_free_joint_motion', 'plan_joint_motion',
           'plan_linear_motion', 'rotation_from_vector', 'rotation_vector', 'sample', 'seated_tip_pose',
           'tip_pose_on_axis']
