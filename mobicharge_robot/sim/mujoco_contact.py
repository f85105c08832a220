"""Connector-inlet contact simulated by MuJoCo (simulator side; production code never imports this).

The inlet is built from the same geometry data as vision (``config/inlets.yaml`` via ``core.vision.inlets``), in
the inlet frame of doc/architecture.md (z out of the face):
- every hole is a bore: an octagon of wall boxes whose inscribed circle is the hole opening (``diameter_m``), from
  the face down to ``hole_depth_m``, closed by a floor; its entry is a 45 degree chamfer ring
  (``CHAMFER_M`` wide) and its rim a collar of face material (``COLLAR_M``) so that a plug that misses lands on the
  face;
- every hole holds its contact pin (``pin_diameter_m``, capsule-tipped, tip ``pin_tip_depth_m`` behind the face);
- the latch lug sits above the face (``LUG_*``): a ramp the connector's spring-loaded latch hook rides over, and a
  vertical back face that holds it (the detent); a connector pulled back while latched is held by it.

The connector (the plug on the robot's wrist) carries one contact-tube carrier per hole (a cylinder of the hole's
diameter less ``CLEARANCE_M``, ``CARRIER_LENGTH_M`` long, its front face being the ``connector_tip`` mating face),
a square socket of four walls inside each carrier that the pin must enter, and the latch hook on a sliding joint
with a spring (``LATCH_STIFFNESS``), which the ``release`` actuator lifts. Roll matters because the hole pattern is
not symmetric (two small signal holes at the top, the DC pair below): a carrier turned off its hole lands on the
face or a chamfer.

The plug is a free body driven by the arm through the wrist's compliance: a spring-damper (``WRIST_*``) between the
commanded tip pose (from the arm's joint positions) and the plug. The force/torque sensor measures that spring's
wrench; ``ForceTorqueSensor`` adds what a real sensor adds (first-order filter, noise, a small bias).

Seated means: the carriers at full depth (mating face within ``SEAT_TOLERANCE_M`` of ``seat_depth_m``) and the latch
hook behind the lug's back face, below its top (engaged), both read from MuJoCo's state.

Where the numbers come from. The IEC 62196-2/-3 standard sheets are not public (the public catalogue pages give only
their scope), so positions, diameters, depths and the seat depth are the approximate figures of
``config/inlets.yaml`` (each with its source there). Chamfer, clearance, collar, lug and latch dimensions are
modelling choices of this file, set to typical moulded-connector values (0.3 mm radial clearance, 1.5 mm x 45 degree
chamfers, a 2 mm latch engagement). Friction 0.3 is plastic on plastic. The capture range these give (the errors
under which an open-loop straight push seats) is measured by ``bench/insertion.py`` (its ``capture`` rows) and
quoted in the README.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

CLEARANCE_M = 0.0003  # radial clearance of a carrier in its bore
CHAMFER_M = 0.0015  # bore entry chamfer width (45 degrees)
COLLAR_M = 0.004  # face material modelled around each bore's chamfer
WALL_M = 0.003  # bore wall thickness
SEGMENTS = 8  # bore walls per hole (octagon)
CARRIER_LENGTH_M = 0.040
SOCKET_CLEARANCE_M = 0.0004  # pin to socket wall, radial
LUG_TOP_Y_M = 0.036  # the lug's top edge (inlet y)
LUG_BACK_Z_M = 0.004  # its back face (inlet z): the hook sits behind it when latched
LUG_FRONT_Z_M = 0.010
LUG_RAMP_M = 0.010  # ramp run in front of the lug (about 17 degrees)
HOOK_HALF_M = 0.0015  # the latch tooth: a block 3 mm high and deep, 10 mm wide
HOOK_LIFT_M = 0.002  # how far the hook must rise to pass the lug
LATCH_STIFFNESS = 5000.0  # N/m, latch spring
LATCH_RANGE_M = 0.005
RELEASE_KP = 30000.0  # N/m, release actuator: against the latch spring it lifts the tooth ~3.9 mm, clear of the lug
SEAT_TOLERANCE_M = 0.0015
WRIST_STIFFNESS = (4000.0, 4000.0, 20000.0)  # N/m along the tip's x, y, z (lateral compliance of the wrist)
WRIST_ROT_STIFFNESS = 10.0  # N m / rad (a remote-centre-compliance wrist lets the plug turn into its bores)
PLUG_MASS = 0.4  # kg, the compliant part of the wrist and the plug head (gravity is compensated by the arm)
FRICTION = 0.3


def _quat(r: np.ndarray) -> np.ndarray:
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(r, float).reshape(9))
    return q


def _fmt(v) -> str:
    return " ".join(f"{float(x):.7g}" for x in v)


def _ring(cx, cy, r_in, thickness, z_lo, z_hi, n, name, cls) -> List[str]:
    """Boxes forming an n-gon ring whose inscribed radius is r_in, from z_lo to z_hi."""
    out = []
    half_t = 0.5 * thickness
    half_w = (r_in + thickness) * math.tan(math.pi / n) * 1.02
    for k in range(n):
        a = 2.0 * math.pi * k / n
        c, s = math.cos(a), math.sin(a)
        pos = (cx + (r_in + half_t) * c, cy + (r_in + half_t) * s, 0.5 * (z_lo + z_hi))
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        out.append(f'<geom name="{name}_{k}" class="{cls}" type="box" size="{half_t:.7g} {half_w:.7g} '
                   f'{0.5 * (z_hi - z_lo):.7g}" pos="{_fmt(pos)}" quat="{_fmt(_quat(rot))}"/>')
    return out


def _chamfer(cx, cy, r_in, width, n, name, cls) -> List[str]:
    """A 45 degree conical entry from radius r_in + width at z = 0 down to r_in at z = -width, as n boxes."""
    out = []
    thick = 0.002
    half_len = 0.5 * width * math.sqrt(2.0) * 1.05
    half_w = (r_in + width + thick) * math.tan(math.pi / n) * 1.05
    for k in range(n):
        a = 2.0 * math.pi * k / n
        c, s = math.cos(a), math.sin(a)
        radial = np.array([c, s, 0.0])
        tangent = np.array([-s, c, 0.0])
        along = (radial + np.array([0.0, 0.0, 1.0])) / math.sqrt(2.0)  # up the slope, outwards
        normal = np.cross(along, tangent)  # points into the free space (inwards and up)
        if normal[2] < 0:
            normal = -normal
        mid = np.array([cx, cy, 0.0]) + radial * (r_in + 0.5 * width) + np.array([0.0, 0.0, -0.5 * width])
        centre = mid - normal * 0.5 * thick
        rot = np.column_stack([along, tangent, np.cross(along, tangent)])
        if np.linalg.det(rot) < 0:
            rot[:, 2] = -rot[:, 2]
        out.append(f'<geom name="{name}_{k}" class="{cls}" type="box" size="{half_len:.7g} {half_w:.7g} '
                   f'{0.5 * thick:.7g}" pos="{_fmt(centre)}" quat="{_fmt(_quat(rot))}"/>')
    return out


def build_mjcf(inlet) -> str:
    """The MJCF text of one inlet and the connector, from an ``InletModel`` (core.vision.inlets)."""
    holes = np.asarray(inlet.keypoints, float)[:, :2]
    diam = np.asarray(inlet.hole_diameters_m, float)
    pins = np.asarray(inlet.pin_diameters_m, float)
    depth = float(inlet.hole_depth_m)
    pin_tip = float(inlet.pin_tip_depth_m)
    static: List[str] = []
    # Walls and collars stop short of a neighbouring hole's chamfer (the octagon's corners reach 8% further out).
    gaps = np.full(len(holes), np.inf)
    for i in range(len(holes)):
        for j in range(len(holes)):
            if i != j:
                gap = float(np.linalg.norm(holes[i] - holes[j])) - 0.5 * (diam[i] + diam[j]) - 2.0 * CHAMFER_M
                gaps[i] = min(gaps[i], gap)
    for i, ((x, y), d, pd) in enumerate(zip(holes, diam, pins)):
        r = 0.5 * d
        wall = max(0.0005, min(WALL_M, 0.45 * (gaps[i] + CHAMFER_M) / 1.08))
        collar = max(0.0003, min(COLLAR_M, 0.45 * gaps[i] / 1.08))
        static += _ring(x, y, r, wall, -depth, -CHAMFER_M, SEGMENTS, f"bore{i}", "inlet")
        static += _chamfer(x, y, r, CHAMFER_M, SEGMENTS, f"chamfer{i}", "inlet")
        static += _ring(x, y, r + CHAMFER_M, collar, -0.004, 0.0, SEGMENTS, f"face{i}", "inlet")
        static.append(f'<geom name="floor{i}" class="inlet" type="cylinder" size="{r + wall:.7g} 0.001" '
                      f'pos="{x:.7g} {y:.7g} {-depth - 0.001:.7g}"/>')
        pin_r = 0.5 * pd
        pin_half = 0.5 * (depth - pin_tip - pin_r)
        static.append(f'<geom name="pin{i}" class="pin" type="capsule" size="{pin_r:.7g} {pin_half:.7g}" '
                      f'pos="{x:.7g} {y:.7g} {-depth + pin_half:.7g}"/>')
    # The face around the hole area, where the connector housing's shoulder lands: two strips left and right.
    x_edge = float(np.max(np.abs(holes[:, 0]) + 0.5 * diam)) + CHAMFER_M + 0.001
    y_lo, y_hi = float(np.min(holes[:, 1] - 0.5 * diam)), float(np.max(holes[:, 1] + 0.5 * diam))
    for k, sign in enumerate((-1.0, 1.0)):
        static.append(f'<geom name="rim{k}" class="rim" type="box" size="0.01 {0.5 * (y_hi - y_lo) + 0.01:.7g} 0.002" '
                      f'pos="{sign * (x_edge + 0.01):.7g} {0.5 * (y_lo + y_hi):.7g} -0.002"/>')
    # Latch lug above the face: a block with a vertical back face and a ramp in front.
    lug_h = 0.004
    static.append(f'<geom name="lug" class="inlet" type="box" size="0.006 {0.5 * lug_h:.7g} '
                  f'{0.5 * (LUG_FRONT_Z_M - LUG_BACK_Z_M):.7g}" pos="0 {LUG_TOP_Y_M - 0.5 * lug_h:.7g} '
                  f'{0.5 * (LUG_FRONT_Z_M + LUG_BACK_Z_M):.7g}"/>')
    # The ramp's top surface runs from just above the lug's front top edge (A) down and out to B.
    A = np.array([LUG_TOP_Y_M + 0.0004, LUG_FRONT_Z_M])
    B = np.array([LUG_TOP_Y_M - HOOK_LIFT_M - 0.001, LUG_FRONT_Z_M + LUG_RAMP_M])
    ramp_len = float(np.linalg.norm(B - A))
    u = (B - A) / ramp_len
    n_up = np.array([u[1], -u[0]])  # perpendicular, pointing up and out (the free side)
    if n_up[0] < 0:
        n_up = -n_up
    ramp_rot = np.array([[1.0, 0.0, 0.0], [0.0, n_up[0], u[0]], [0.0, n_up[1], u[1]]])
    if np.linalg.det(ramp_rot) < 0:
        ramp_rot[:, 0] = -ramp_rot[:, 0]
    mid = 0.5 * (A + B) - n_up * 0.001
    ramp_c = np.array([0.0, mid[0], mid[1]])
    static.append(f'<geom name="ramp" class="inlet" type="box" size="0.006 0.001 {0.5 * ramp_len:.7g}" '
                  f'pos="{_fmt(ramp_c)}" quat="{_fmt(_quat(ramp_rot))}"/>')

    # The connector in its own (tip) frame: z along insertion, x = -inlet x, y = inlet y when aligned.
    plug: List[str] = []
    for i, ((x, y), d, pd) in enumerate(zip(holes, diam, pins)):
        r = 0.5 * d - CLEARANCE_M
        px, py = -x, y
        plug.append(f'<geom name="carrier{i}" class="plug" type="cylinder" size="{r:.7g} '
                    f'{0.5 * CARRIER_LENGTH_M:.7g}" pos="{px:.7g} {py:.7g} {-0.5 * CARRIER_LENGTH_M:.7g}"/>')
        s_in = 0.5 * pd + SOCKET_CLEARANCE_M
        plug += _ring(px, py, s_in, 0.0008, -CARRIER_LENGTH_M, -0.0005, 4, f"socket{i}", "socket")
    seat = float(inlet.seat_depth_m)
    # The housing's front shoulder meets the face when the carriers are 0.5 mm past the seat depth: the end stop.
    # Its top edge stays below the latch lug.
    shoulder = seat + 0.0005
    plug.append(f'<geom name="housing" class="housing" type="box" size="0.035 0.0465 0.03" '
                f'pos="0 -0.0185 {-shoulder - 0.03:.7g}"/>')
    # Hook: a rod along x; latched it sits just behind the lug's back face with its bottom below the lug top.
    hook_z_inlet = LUG_BACK_Z_M - HOOK_HALF_M - 0.0005
    hook_z_tip = -(hook_z_inlet + seat)
    hook_y = LUG_TOP_Y_M - HOOK_LIFT_M + HOOK_HALF_M
    mass_i = PLUG_MASS * 0.05 ** 2
    return f"""
<mujoco model="inlet_{inlet.name}">
  <option timestep="0.001" gravity="0 0 0" integrator="implicitfast" cone="elliptic" noslip_iterations="0"/>
  <size memory="8M"/>
  <default>
    <geom friction="{FRICTION} 0.005 0.0001" solref="0.002 1" solimp="0.95 0.99 0.0005" condim="3"/>
    <default class="inlet"><geom contype="0" conaffinity="1" rgba="0.2 0.2 0.2 1"/></default>
    <default class="pin"><geom contype="0" conaffinity="2" rgba="0.8 0.6 0.2 1"/></default>
    <default class="plug"><geom contype="1" conaffinity="0" rgba="0.1 0.1 0.1 1"/></default>
    <default class="socket"><geom contype="2" conaffinity="0" rgba="0.5 0.5 0.5 1"/></default>
    <default class="housing"><geom contype="4" conaffinity="0" rgba="0.1 0.1 0.1 1"/></default>
    <default class="rim"><geom contype="0" conaffinity="4" rgba="0.2 0.2 0.2 1"/></default>
  </default>
  <worldbody>
    {chr(10).join(static)}
    <body name="plug" pos="0 0 0.05" quat="0 0 1 0">
      <freejoint name="plug_free"/>
      <inertial pos="0 0 -0.03" mass="{PLUG_MASS}" diaginertia="{mass_i:.6g} {mass_i:.6g} {mass_i:.6g}"/>
      {chr(10).join(plug)}
      <body name="latch" pos="0 {hook_y:.7g} {hook_z_tip:.7g}">
        <joint name="latch" type="slide" axis="0 1 0" range="0 {LATCH_RANGE_M}" limited="true"
               stiffness="{LATCH_STIFFNESS}" springref="0" damping="15"/>
        <inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>
        <geom name="hook" class="plug" type="box" size="0.005 {HOOK_HALF_M} {HOOK_HALF_M}"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <position name="release" joint="latch" kp="{RELEASE_KP}" ctrlrange="0 {LATCH_RANGE_M}" ctrllimited="true"/>
  </actuator>
</mujoco>
"""


SETTLED_QVEL = 2e-3  # m/s and rad/s: below this the plug counts as at rest (see MujocoInletContact.step)


@dataclass
class ContactState:
    """What one step of the contact simulation gives: the wrench on the plug from the wrist spring as the F/T
    sensor sees it (force N, torque N m, tip frame), the plug's actual pose in the inlet frame, insertion depth
    (m, positive inside the face), and whether MuJoCo has it seated and latched."""

    force_tip: np.ndarray
    torque_tip: np.ndarray
    T_inlet_tip: np.ndarray
    depth_m: float
    latched: bool
    seated: bool
    contacts: int


class MujocoInletContact:
    """One inlet and the connector in MuJoCo. ``step(T_inlet_tip_cmd, dt, release)`` advances ``dt`` seconds with
    the wrist's commanded tip pose (inlet frame) and returns the :class:`ContactState`."""

    def __init__(self, inlet, timestep: float = 0.001):
        import mujoco

        self._mj = mujoco
        self.inlet = inlet
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(inlet))
        self.model.opt.timestep = timestep
        self.data = mujoco.MjData(self.model)
        self._body = self.model.body("plug").id
        self._hook = self.model.geom("hook").id
        self._latch_q = self.model.joint("latch").qposadr[0]
        self._free_q = self.model.joint("plug_free").qposadr[0]
        self._free_v = self.model.joint("plug_free").dofadr[0]
        self.seat_depth_m = float(inlet.seat_depth_m)
        self._k = np.asarray(WRIST_STIFFNESS, float)
        self._d = 2.0 * np.sqrt(self._k * PLUG_MASS)
        self._kr = WRIST_ROT_STIFFNESS
        inertia = PLUG_MASS * 0.05 ** 2
        self._dr = 2.0 * math.sqrt(self._kr * inertia)
        self.wrench = np.zeros(6)
        self.placed = False
        self.latched = False
        self.forced = False  # set by fault injection: seated without the arm, not stepped
        self.settled = True  # the plug is at rest (no need to step while the command does not change)

    def reset(self, T_inlet_tip: np.ndarray) -> None:
        """Start over with the plug at a pose (inlet frame), latch closed and unlatched."""
        self.data.qpos[:] = self.model.qpos0
        self.data.qvel[:] = 0.0
        self.data.ctrl[:] = 0.0
        self.latched = False
        self.forced = False
        self.place(T_inlet_tip)

    def place(self, T_inlet_tip: np.ndarray) -> None:
        """Put the plug at a pose (inlet frame) with no velocity: when the tip comes near the inlet."""
        T = np.asarray(T_inlet_tip, float)
        self.data.qpos[self._free_q:self._free_q + 3] = T[:3, 3]
        self.data.qpos[self._free_q + 3:self._free_q + 7] = _quat(T[:3, :3])
        self.data.qvel[:] = 0.0
        self._mj.mj_forward(self.model, self.data)
        self.placed = True

    def plug_pose(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.data.xmat[self._body].reshape(3, 3)
        T[:3, 3] = self.data.xpos[self._body]
        return T

    def _wrist_wrench(self, T_cmd: np.ndarray) -> np.ndarray:
        """Force and torque (world = inlet frame) the wrist spring applies to the plug."""
        T = self.plug_pose()
        R = T[:3, :3]
        v = self.data.qvel[self._free_v:self._free_v + 3]
        w = R @ self.data.qvel[self._free_v + 3:self._free_v + 6]  # freejoint angular velocity is in body frame
        err_local = R.T @ (T_cmd[:3, 3] - T[:3, 3])
        v_local = R.T @ v
        f = R @ (self._k * err_local - self._d * v_local)
        from ..core.arm.kinematics import rotation_vector

        rot_err = rotation_vector(T_cmd[:3, :3] @ R.T)
        tau = self._kr * rot_err - self._dr * w
        return np.concatenate([f, tau])

    def step(self, T_inlet_tip_cmd: np.ndarray, dt: float, release: bool) -> ContactState:
        mj = self._mj
        T_cmd = np.asarray(T_inlet_tip_cmd, float)
        if not self.placed:
            self.place(T_cmd)
        self.data.ctrl[0] = LATCH_RANGE_M if release else 0.0
        n = max(1, int(round(dt / self.model.opt.timestep)))
        acc = np.zeros(6)
        for _ in range(n):
            wrench = self._wrist_wrench(T_cmd)
            self.data.xfrc_applied[self._body] = wrench
            mj.mj_step(self.model, self.data)
            acc += wrench
        wrench = acc / n
        T = self.plug_pose()
        R = T[:3, :3]
        # The sensor reads the load the plug puts on the wrist: minus the spring's action, in the tip frame.
        force_tip = -(R.T @ wrench[:3])
        torque_tip = -(R.T @ wrench[3:])
        depth = -float(T[2, 3])
        latched = self._latched(depth)
        self.latched = latched
        # At rest for the simulator's purposes: a held plug under a small misalignment creeps at well under 1 mm/s
        # (or 1 mrad/s) for tens of seconds; its forces and latch do not change meanwhile, so it need not be stepped
        # (stepping it cost 1000 MuJoCo steps per sim second, which held the charging speed-up near 4x).
        self.settled = float(np.abs(self.data.qvel).max()) < SETTLED_QVEL
        return ContactState(force_tip, torque_tip, T, depth, latched,
                            latched and abs(depth - self.seat_depth_m) <= SEAT_TOLERANCE_M, int(self.data.ncon))

    def _latched(self, depth: float) -> bool:
        hook = self.data.geom_xpos[self._hook]
        return bool(hook[2] < LUG_BACK_Z_M and hook[1] - HOOK_HALF_M < LUG_TOP_Y_M - 0.0005
                    and abs(hook[0]) < 0.006 and depth >= self.seat_depth_m - SEAT_TOLERANCE_M)


@dataclass
class ForceTorqueSensor:
    """A wrist F/T sensor's output: first-order low-pass (``cutoff_hz``), white noise (``noise_n``, ``noise_nm``)
    and a constant bias drawn once (``bias_n``), as a strain-gauge sensor after taring."""

    rng: np.random.Generator
    cutoff_hz: float = 30.0
    noise_n: float = 0.4
    noise_nm: float = 0.02
    bias_n: float = 0.3
    state: np.ndarray = field(default_factory=lambda: np.zeros(6))
    _bias: Optional[np.ndarray] = None

    def update(self, force: np.ndarray, torque: np.ndarray, dt: float) -> np.ndarray:
        if self._bias is None:
            self._bias = np.concatenate([self.rng.normal(0.0, self.bias_n, 3), np.zeros(3)])
        raw = np.concatenate([force, torque])
        alpha = 1.0 - math.exp(-2.0 * math.pi * self.cutoff_hz * dt)
        self.state = self.state + alpha * (raw - self.state)
        noise = np.concatenate([self.rng.normal(0.0, self.noise_n, 3), self.rng.normal(0.0, self.noise_nm, 3)])
        return self.state + self._bias + noise
