"""Navigation: occupancy grids, planning, path following, scan safety and latency compensation."""
from .follower import APPROACH, ARRIVED, FOLLOWING, FollowerError, FollowerParams, PathFollower, ROTATING_TO_GOAL, ROTATING_TO_PATH
from .lane_planner import LanePlanner
from .lanes import LaneRules
from .latency import CommandHistory, advance
from .occupancy import FREE, OCCUPIED, OccupancyError, OccupancyGrid, distance_field, from_polygons, occupancy_from_garage, read_map_server, speed_limit_at, write_map_server
from .planner import GoalOccupied, GoalOutsideMap, GridPlanner, InvalidPose, NoValidPath, Path, PlannerError, PlannerTimeout, StartOccupied, StartOutsideMap, path_from_polyline
from .safety import FreshnessMonitor, StopZone, footprint_clearance, scan_points
from .localization import LOCALIZED, LOST, LocalizationError, LocalizerParams, PoseHistory, ScanLocalizer, static_structure_grid
from .local_costmap import LocalCostmap, LocalCostmapParams, path_blocked, stamp_obstacles
from .car_fit import CarFit, fit_car

__all__ = ['APPROACH', 'CarFit', 'LOCALIZED', 'LOST', 'LocalCostmap', 'LocalCostmapParams', 'LocalizationError', 'LocalizerParams', 'PoseHistory', 'ScanLocalizer', 'fit_car', 'footprint_clearance', 'path_blocked', 'stamp_obstacles', 'static_structure_grid', 'ARRIVED', 'CommandHistory', 'FOLLOWING', 'FREE', 'FollowerError', 'FollowerParams', 'FreshnessMonitor', 'GoalOccupied', 'GoalOutsideMap', 'GridPlanner', 'InvalidPose', 'LanePlanner', 'LaneRules', 'NoValidPath', 'OCCUPIED', 'OccupancyError', 'OccupancyGrid', 'Path', 'PathFollower', 'PlannerError', 'PlannerTimeout', 'ROTATING_TO_GOAL', 'ROTATING_TO_PATH', 'StartOccupied', 'StartOutsideMap', 'StopZone', 'advance', 'distance_field', 'from_polygons', 'occupancy_from_garage', 'path_from_polyline', 'read_map_server', 'scan_points', 'speed_limit_at', 'write_map_server']
