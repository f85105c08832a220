"""State-of-charge estimator on a pack that is not its model: one seeded 24-hour duty cycle.

The true pack (``PackModel``) is drawn as in the ``hard`` variation: capacity +-8%, internal resistance +-30%
(R0 and R1 drawn independently), DC stage efficiency +-1.5%; the BMS current sensor reads with an offset of 1% of its
full scale (sign drawn) plus noise, the voltage with noise. The estimator (``SocEstimator``) knows only the nominal
``PackParams`` and starts 5% away from the true state of charge.

Duty cycle (24 h, 1 s BMS samples): idle, driving between cars (traction + electronics), at least six charging
sessions at different powers through the simulated DC stage into simulated cars (``DcOutputStage``, ``SimCar``),
a depot recharge at the grid power limit whenever the pack runs low, and idle to the end of the day.

Figures: soc RMSE and max |error| after the first 10 minutes (percentage points), capacity error (%), current-offset
error (A). The last line is one JSON object.

    scripts/run-clean-env.sh .venv/bin/python bench/soc.py [--seed 16] [--hours 24]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mobicharge_robot.core.energy.pack import PackModel, PackParams, SocEstimator  # noqa: E402
from mobicharge_robot.sim.car import SimCar  # noqa: E402
from mobicharge_robot.sim.dc_stage import DcOutputStage  # noqa: E402

from mobicharge_robot.sim.variation import PROFILES  # noqa: E402

# The ``hard`` variation's plant ranges (sim/variation.py), uniform draws within +- these fractions.
_HARD = PROFILES["hard"]
HARD_CAPACITY = _HARD.pack_capacity_pct / 100.0
HARD_RESISTANCE = _HARD.pack_resistance_pct / 100.0
HARD_EFFICIENCY = _HARD.dc_efficiency_pct / 100.0
START_ERROR = _HARD.pack_start_soc_pct / 100.0  # estimator start soc error (fraction, sign drawn)
# The BMS current sensor: +-300 A full scale (twice the 60 kW discharge limit at the lowest pack voltage, rounded),
# offset 1% of full scale; noise 0.5 A rms. Voltage noise 0.2 V rms on the pack sum (144 cells x ~1.5 mV + ADC).
CURRENT_FULL_SCALE_A = 300.0
CURRENT_OFFSET_FRACTION = 0.01
CURRENT_NOISE_A = 0.5
VOLTAGE_NOISE_V = 0.2
TEMP_NOISE_C = 0.1

ELECTRONICS_W = 150.0  # always on (computer, sensors)
DRIVE_W = 400.0  # traction at 1 m/s on a level floor
GRID_LIMIT_KW = 11.0  # depot recharge limit (the energy node's parameter default)
RECHARGE_BELOW_SOC = 0.30
RECHARGE_TO_SOC = 0.95
SKIP_S = 600.0  # the first 10 minutes are convergence, not scored for the max error


def _draw(rng, frac):
    return 1.0 + rng.uniform(-frac, frac)


def build_schedule(rng, hours):
    """A list of (kind, seconds, arg): 'idle', 'drive', 'session' (arg = (power_kw, energy_kwh))."""
    powers = [50.0, 11.0, 35.0, 22.0, 45.0, 15.0, 30.0, 40.0]
    rng.shuffle(powers)
    plan = [("idle", 900.0, None)]
    for k, p in enumerate(powers):
        plan.append(("drive", float(rng.uniform(60.0, 240.0)), None))
        plan.append(("session", 0.0, (p, float(rng.uniform(4.0, 9.0)))))
        plan.append(("idle", float(rng.uniform(300.0, 3600.0)), None))
    plan.append(("drive", 180.0, None))
    plan.append(("idle", hours * 3600.0, None))  # to the end of the day (the loop stops at `hours`)
    return plan


def run(seed: int, hours: float) -> dict:
    rng = np.random.default_rng(seed)
    nominal = PackParams()
    cap_f, r0_f, r1_f = _draw(rng, HARD_CAPACITY), _draw(rng, HARD_RESISTANCE), _draw(rng, HARD_RESISTANCE)
    true_params = PackParams(capacity_kwh=nominal.capacity_kwh * cap_f, r0_ohm=nominal.r0_ohm * r0_f,
                             r1_ohm=nominal.r1_ohm * r1_f)
    eff = 0.96 * _draw(rng, HARD_EFFICIENCY)
    offset_a = CURRENT_OFFSET_FRACTION * CURRENT_FULL_SCALE_A * (1.0 if rng.uniform() < 0.5 else -1.0)
    soc0 = float(rng.uniform(0.75, 0.9))
    start_err = START_ERROR * (1.0 if rng.uniform() < 0.5 else -1.0)
    pack = PackModel(true_params, soc=soc0)
    est = SocEstimator(nominal, min(1.0, max(0.0, soc0 + start_err)), voltage_noise_v=VOLTAGE_NOISE_V,
                       current_noise_a=CURRENT_NOISE_A)
    stage = DcOutputStage(rated_efficiency=eff)
    print(f"plant: capacity {true_params.capacity_kwh:.2f} kWh ({cap_f - 1:+.1%}), R0 x{r0_f:.3f}, R1 x{r1_f:.3f}, "
          f"stage efficiency {eff:.4f}, current offset {offset_a:+.1f} A, start soc {soc0:.3f}, "
          f"estimator starts at {soc0 + start_err:.3f}")

    dt = 1.0
    t = 0.0
    end = hours * 3600.0
    errors, times = [], []
    sessions, recharges = [], 0
    drawn_wh = delivered_wh = 0.0

    def step(power_w):
        nonlocal t
        pack.step(power_w, dt)
        v = pack.voltage_v + rng.normal(0.0, VOLTAGE_NOISE_V)
        i = pack.current_a + offset_a + rng.normal(0.0, CURRENT_NOISE_A)
        est.update(v, i, pack.temp_c + rng.normal(0.0, TEMP_NOISE_C), dt)
        t += dt
        errors.append(est.soc - pack.soc)
        times.append(t)

    def recharge():
        nonlocal recharges
        recharges += 1
        soc_before = pack.soc
        while t < end and pack.soc < RECHARGE_TO_SOC:
            allowed = min(1e3 * GRID_LIMIT_KW * 0.96, pack.available_charge_w())
            step(-(allowed - ELECTRONICS_W))
        print(f"  t={t / 3600:5.2f} h depot recharge {soc_before:.3f} -> {pack.soc:.3f}")

    for kind, seconds, arg in build_schedule(rng, hours):
        if t >= end:
            break
        if kind in ("idle", "drive"):
            power = ELECTRONICS_W + (DRIVE_W if kind == "drive" else 0.0)
            for _ in range(int(seconds / dt)):
                if t >= end:
                    break
                step(power)
            continue
        power_kw, energy_kwh = arg
        if pack.soc < RECHARGE_BELOW_SOC + 0.2:
            for _ in range(240):  # drive home
                step(ELECTRONICS_W + DRIVE_W)
            recharge()
            for _ in range(240):
                step(ELECTRONICS_W + DRIVE_W)
        car = SimCar(capacity_kwh=float(rng.uniform(50.0, 90.0)), soc=float(rng.uniform(0.1, 0.5)),
                     max_dc_power_kw=power_kw)
        start_t, start_soc = t, pack.soc
        e_wh = 0.0
        while t < end and e_wh < 1e3 * energy_kwh and pack.soc > 0.1:
            v_car = car.voltage_v if car.voltage_v > 0 else car.ocv_v()
            volts, amps, pack_w = stage.step(True, 1e3 * power_kw / v_car, car, dt)
            car.step(amps, dt)
            e_wh += volts * amps * dt / 3600.0
            drawn_wh += pack_w * dt / 3600.0
            step(pack_w + ELECTRONICS_W)
        stage.step(False, 0.0, None, dt)
        delivered_wh += e_wh
        sessions.append({"power_kw": power_kw, "kwh": round(e_wh / 1e3, 3), "min": round((t - start_t) / 60.0, 1)})
        print(f"  t={t / 3600:5.2f} h session {len(sessions)}: {power_kw:4.0f} kW, {e_wh / 1e3:5.2f} kWh in "
              f"{(t - start_t) / 60:5.1f} min, pack {start_soc:.3f} -> {pack.soc:.3f}, est err "
              f"{100 * (est.soc - pack.soc):+.2f}%")
        if pack.soc < RECHARGE_BELOW_SOC:
            for _ in range(240):
                step(ELECTRONICS_W + DRIVE_W)
            recharge()
    while t < end:
        step(ELECTRONICS_W)
    if recharges == 0:
        raise SystemExit("the duty cycle had no depot recharge: the schedule is wrong")

    err = np.asarray(errors)
    scored = err[np.asarray(times) > SKIP_S]
    rmse = 100.0 * float(np.sqrt(np.mean(scored ** 2)))
    max_err = 100.0 * float(np.max(np.abs(scored)))
    cap_err = 100.0 * (est.capacity_kwh - true_params.capacity_kwh) / true_params.capacity_kwh
    return {
        "seed": seed,
        "hours": hours,
        "sessions": len(sessions),
        "session_powers_kw": sorted({s["power_kw"] for s in sessions}),
        "depot_recharges": recharges,
        "delivered_kwh": round(delivered_wh / 1e3, 2),
        "soc_rmse_pct": round(rmse, 3),
        "soc_max_err_pct": round(max_err, 3),
        "soc_final_err_pct": round(100.0 * float(err[-1]), 3),
        "capacity_err_pct": round(cap_err, 3),
        "current_offset_err_a": round(est.current_offset_a - offset_a, 3),
        "r0_err_pct": round(100.0 * (est.r0_ohm - true_params.r0_ohm) / true_params.r0_ohm, 2),
        "estimate_reliable_at_end": est.reliable,
        "pass": rmse <= 1.0 and max_err <= 3.0,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--hours", type=float, default=24.0)
    args = ap.parse_args(argv)
    if not 1.0 <= args.hours <= 72.0:
        ap.error("--hours must be within 1..72")
    wall = time.monotonic()
    res = run(args.seed, args.hours)
    res["wall_s"] = round(time.monotonic() - wall, 1)
    print(f"soc RMSE {res['soc_rmse_pct']:.3f}% (bar 1.0), max |error| after 10 min {res['soc_max_err_pct']:.3f}% "
          f"(bar 3.0), capacity error {res['capacity_err_pct']:+.2f}%, current offset error "
          f"{res['current_offset_err_a']:+.2f} A")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
