"""The garage description: loading and validation, staging poses beside a car, and the seeded garage generator."""
from .garage import DEFAULT_CONNECTORS, Garage, GarageError, inlet_in_vehicle, load_garage, parse_garage
from .staging import FailedToStage, StagingError, inlet_relative_to_robot, polygons_intersect, staging_pose
from .generator import GeneratorError, garage_yaml, generate_garage, usable_energy_kwh, write_garage

__all__ = ['DEFAULT_CONNECTORS', 'FailedToStage', 'Garage', 'GarageError', 'GeneratorError', 'StagingError',
           'garage_yaml', 'generate_garage', 'usable_energy_kwh', 'write_garage', 'inlet_in_vehicle', 'inlet_relative_to_robot', 'load_garage', 'parse_garage', 'polygons_intersect', 'staging_pose']
