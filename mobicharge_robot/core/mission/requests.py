"""JSON payloads exchanged as std_msgs/String, with their schemas and validation.

``charge/session_request`` (mission manager -> energy node)::

    {"session_id": "car_01-1200", "vehicle_id": "car_01", "target_kwh": 8.0}

``target_kwh`` is the energy to deliver into the car, in kWh (0 < target <= 500). An optional ``"kind"`` is
``"deliver"`` (the default) or ``"recharge"``: dock the robot's own pack to the grid until the energy node's
``recharge_to_soc`` (``target_kwh`` is then an upper bound on the energy taken in)::

    {"session_id": "recharge-1", "vehicle_id": "dock", "target_kwh": 500, "kind": "recharge"}
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass


class RequestError(ValueError):
    """A malformed or out-of-range request; the message says which field and why."""


@dataclass(frozen=True)
class SessionRequest:
    session_id: str
    vehicle_id: str
    target_kwh: float
    kind: str = "deliver"


def _field(data: dict, name: str, kind):
    if name not in data:
        raise RequestError(f"missing field '{name}'")
    value = data[name]
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(f"field '{name}' must be a number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise RequestError(f"field '{name}' must be finite")
        return value
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f"field '{name}' must be a non-empty string")
    return value


def parse_session_request(text: str) -> SessionRequest:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise RequestError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError("the request must be a JSON object")
    unknown = set(data) - {"session_id", "vehicle_id", "target_kwh", "kind"}
    if unknown:
        raise RequestError(f"unknown field(s): {', '.join(sorted(unknown))}")
    kind = data.get("kind", "deliver")
    if kind not in ("deliver", "recharge"):
        raise RequestError(f"field 'kind' must be 'deliver' or 'recharge', got {kind!r}")
    req = SessionRequest(_field(data, "session_id", str), _field(data, "vehicle_id", str),
                         _field(data, "target_kwh", float), kind)
    if not 0.0 < req.target_kwh <= 500.0:
        raise RequestError(f"target_kwh must be within (0, 500] kWh, got {req.target_kwh}")
    return req


def session_request_json(req: SessionRequest) -> str:
    out = {"session_id": req.session_id, "vehicle_id": req.vehicle_id, "target_kwh": req.target_kwh}
    if req.kind != "deliver":
        out["kind"] = req.kind
    return json.dumps(out)
