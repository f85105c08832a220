"""ament_python package set-up: installs the Python package, its data under share/, and one console script per
node plus the user tools."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mobicharge_robot"


def data_dir(directory, pattern="*"):
    """Install every file matching ``pattern`` under ``directory`` to share/<pkg>/<same relative dir>."""
    entries = {}
    for path in glob(os.path.join(directory, "**", pattern), recursive=True):
        if os.path.isfile(path):
            target = os.path.join("share", PACKAGE, os.path.dirname(path))
            entries.setdefault(target, []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "bench"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *data_dir("launch"),
        *data_dir("config"),
        *data_dir("urdf"),
        *data_dir("worlds"),
        *data_dir("maps"),
        *data_dir("rviz"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="mobicharge_robot developers",
    maintainer_email="dev@mobicharge.invalid",
    description="Autonomous mobile EV charger robot stack with a loopback simulator.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "loopback_sim = mobicharge_robot.sim.loopback_node:main",
            "localization = mobicharge_robot.nodes.localization_node:main",
            "navigation = mobicharge_robot.nodes.navigation_node:main",
            "port_detection = mobicharge_robot.nodes.port_detection_node:main",
            "arm = mobicharge_robot.nodes.arm_node:main",
            "energy = mobicharge_robot.nodes.energy_node:main",
            "mission_manager = mobicharge_robot.nodes.mission_manager_node:main",
            "garage_markers = mobicharge_robot.nodes.garage_markers_node:main",
            "mobicharge-demo = mobicharge_robot.tools.demo:main",
            "mobicharge-detect-port = mobicharge_robot.tools.detect_port:main",
            "mobicharge-check-garage = mobicharge_robot.tools.check_garage:main",
            "mobicharge-generate-world = mobicharge_robot.tools.generate_world:main",
            "mobicharge-generate-map = mobicharge_robot.tools.generate_map:main",
            "mobicharge-generate-garage = mobicharge_robot.tools.generate_garage:main",
        ],
    },
)
