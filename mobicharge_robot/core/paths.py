"""Where the package's data files live: the source tree in a checkout, or share/mobicharge_robot when installed."""
from __future__ import annotations

import os
import sys

PACKAGE = "mobicharge_robot"
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def data_path(*parts: str) -> str:
    """The path of a data file such as ``data_path('config', 'inlets.yaml')``.

    The source tree wins when it has the file (a checkout or an editable install); otherwise the installed share
    directory (``<prefix>/share/mobicharge_robot``) is used, found through ament_index when it is importable.
    """
    cand = os.path.join(_SOURCE_ROOT, *parts)
    if os.path.exists(cand):
        return cand
    for share in _share_dirs():
        alt = os.path.join(share, *parts)
        if os.path.exists(alt):
            return alt
    return cand


def _share_dirs():
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            yield get_package_share_directory(PACKAGE)
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    yield os.path.join(sys.prefix, "share", PACKAGE)
