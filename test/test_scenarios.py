"""The scenario suite runs whole missions in varied worlds and scores them against ground truth: two scenarios
here (at once), checked for what the simulator and the energy side must guarantee in any world (no energy from
nothing, never energized without a seated plug) and for the suite's own output. Served rate, collisions and
strandings are the suite's figures, printed by bench/scenarios.py and reported against the issue's bars."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"served_rate", "collisions", "strandings", "energized_without_seated", "energy_created_kwh",
        "meter_error_max_pct", "realtime_factor", "wall_s", "scenarios", "reserve_violations",
        "served_after_departure", "failure_reasons"}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("scenarios"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "scenarios.py"), "--count", "2",
                           "--variation", "nominal", "--seed", "42", "--timeout", "240", "--out", out],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]), lines, out


def test_suite_prints_a_line_per_scenario_and_the_json_keys(suite):
    figures, lines, _ = suite
    assert KEYS <= set(figures), KEYS - set(figures)
    assert figures["scenarios"] == 2 and figures["scenarios_without_truth"] == 0
    assert sum(1 for line in lines if line.startswith("#")) == 2
    assert figures["cars"] >= 4


def test_the_drawn_world_is_in_each_run_folder(suite):
    _, _, out = suite
    for i in range(2):
        with open(os.path.join(out, f"scenario_{i:03d}", "world.json"), encoding="utf-8") as f:
            world = json.load(f)
        assert world["profile"] == "nominal" and world["cars"]


def test_energy_is_conserved_and_never_delivered_unseated(suite):
    figures, _, _ = suite
    assert figures["energy_created_kwh"] is not None and figures["energy_created_kwh"] <= 0.001
    assert figures["energized_without_seated"] == 0


def test_every_scenario_is_scored_with_counts_not_guesses(suite):
    figures, lines, _ = suite
    assert 0.0 <= figures["served_rate"] <= 1.0
    assert figures["served"] == round(figures["served_rate"] * figures["cars"])
    assert isinstance(figures["collisions"], int) and figures["collisions"] >= 0
    assert 0 <= figures["strandings"] <= 2
    unserved = figures["cars"] - figures["served"]
    assert sum(figures["failure_reasons"].values()) == unserved  # every car not served has a reason
