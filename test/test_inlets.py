"""Inlet geometry from config/inlets.yaml: hole counts, mirror symmetry, consistency and file validation."""
import os

import numpy as np
import pytest
import yaml

from mobicharge_robot.core.vision.inlets import InletConfigError, InletModel, data_path, load_inlets


@pytest.fixture(scope="module")
def inlets():
    return load_inlets()


def test_all_three_inlets_load_with_the_expected_holes(inlets):
    assert set(inlets) == {"ccs2", "type2", "ccs1"}
    assert set(inlets["type2"].hole_names) == {"L1", "L2", "L3", "N", "PE", "CP", "PP"}
    assert set(inlets["ccs2"].hole_names) == {"L1", "L2", "L3", "N", "PE", "CP", "PP", "DC+", "DC-"}
    assert set(inlets["ccs1"].hole_names) == {"L1", "L2N", "PE", "CP", "PP", "DC+", "DC-"}
    for m in inlets.values():
        n = len(m.hole_names)
        assert m.keypoints.shape == (n, 3) and m.hole_diameters_m.shape == (n,) and m.pin_diameters_m.shape == (n,)
        assert np.all(m.keypoints[:, 2] == 0.0)
        assert m.outline.shape[1] == 3 and np.all(m.outline[:, 2] == 0.0)
        assert np.all(m.pin_diameters_m < m.hole_diameters_m)


def test_ccs2_reuses_the_type2_ac_face_exactly(inlets):
    t2, c2 = inlets["type2"], inlets["ccs2"]
    for name in t2.hole_names:
        i, j = t2.hole_index(name), c2.hole_index(name)
        assert np.array_equal(t2.keypoints[i], c2.keypoints[j])
        assert t2.hole_diameters_m[i] == c2.hole_diameters_m[j]


@pytest.mark.parametrize("inlet,pairs", [
    ("type2", [("L1", "N"), ("L2", "L3"), ("CP", "PP")]),
    ("ccs2", [("L1", "N"), ("L2", "L3"), ("CP", "PP"), ("DC-", "DC+")]),
    ("ccs1", [("L1", "L2N"), ("CP", "PP"), ("DC-", "DC+")]),
])
def test_hole_pairs_are_mirror_images_about_the_vertical_axis(inlets, inlet, pairs):
    m = inlets[inlet]
    for a, b in pairs:
        pa, pb = m.keypoints[m.hole_index(a)], m.keypoints[m.hole_index(b)]
        assert pa[0] == pytest.approx(-pb[0]) and pa[0] < 0.0
        assert pa[1] == pytest.approx(pb[1])
        assert m.hole_diameters_m[m.hole_index(a)] == m.hole_diameters_m[m.hole_index(b)]
    assert m.keypoints[m.hole_index("PE"), 0] == 0.0


def test_frame_convention_dc_below_signal_above_and_origin_in_the_ac_circle(inlets):
    c2 = inlets["ccs2"]
    y = dict(zip(c2.hole_names, c2.keypoints[:, 1]))
    assert y["DC+"] < y["L2"] < y["PE"] < y["CP"]  # inlet y points up
    assert c2.keypoints[c2.hole_index("PE"), :2] == pytest.approx([0.0, 0.0])
    # DC holes are the largest, signal holes the smallest
    d = dict(zip(c2.hole_names, c2.hole_diameters_m))
    assert d["DC+"] > d["L1"] > d["CP"]


def test_depths_are_consistent(inlets):
    for m in inlets.values():
        assert 0.0 < m.pin_tip_depth_m < m.seat_depth_m <= m.hole_depth_m
        assert 0.0 < m.recess_depth_m < 0.05


def test_every_dimension_in_the_file_cites_a_source():
    with open(data_path("config/inlets.yaml"), encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    for name, spec in doc["inlets"].items():
        for hole in spec["holes"]:
            assert len(hole["source"]) > 10, (name, hole["name"])
        assert len(spec["outline"]["source"]) > 10
        for key in ("recess_depth_m", "hole_depth_m", "seat_depth_m", "pin_tip_depth_m"):
            assert len(spec[key]["source"]) > 10, (name, key)


def test_data_path_finds_the_package_config():
    path = data_path("config/inlets.yaml")
    assert os.path.isfile(path) and path.endswith(os.path.join("config", "inlets.yaml"))


def _write(tmp_path, doc) -> str:
    p = tmp_path / "inlets.yaml"
    p.write_text(yaml.safe_dump(doc))
    return str(p)


def _raw():
    with open(data_path("config/inlets.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_missing_source_is_rejected(tmp_path):
    doc = _raw()
    del doc["inlets"]["type2"]["holes"][0]["source"]
    with pytest.raises(InletConfigError, match="source"):
        load_inlets(_write(tmp_path, doc))


def test_overlapping_holes_are_rejected(tmp_path):
    doc = _raw()
    doc["inlets"]["type2"]["holes"][1]["x_m"] = -0.004  # L1 onto PE
    with pytest.raises(InletConfigError, match="overlap"):
        load_inlets(_write(tmp_path, doc))


def test_hole_outside_the_face_is_rejected(tmp_path):
    doc = _raw()
    doc["inlets"]["type2"]["holes"][1]["x_m"] = -0.026
    with pytest.raises(InletConfigError, match="outline"):
        load_inlets(_write(tmp_path, doc))


@pytest.mark.parametrize("text", ["inlets: [1, 2]", "{{{ not yaml", "other: 1"])
def test_malformed_files_raise_a_clear_error(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(InletConfigError):
        load_inlets(str(p))


def test_missing_file_raises_inlet_config_error(tmp_path):
    with pytest.raises(InletConfigError, match="cannot read"):
        load_inlets(str(tmp_path / "nope.yaml"))


def test_hole_index_names_unknown_holes(inlets):
    with pytest.raises(KeyError, match="DC"):
        inlets["type2"].hole_index("DC+")
    assert isinstance(inlets["type2"], InletModel)
