"""The shared comparison of tests/reference_files.py: what passes, what fails and what it says."""

from __future__ import annotations

import pytest

from .reference_files import assert_close, load


def test_within_tolerance_passes_and_outside_fails_naming_the_index_and_the_peer():
    assert_close([1.0, 2.0 + 1e-9], [1.0, 2.0], "g", rtol=1e-9, atol=0.0, peer="PyTorch")
    with pytest.raises(AssertionError, match=r"g\[1\]: .*2\.00001.*, PyTorch gives .*2\.0.* \(1 of 2 outside"):
        assert_close([1.0, 2.00001], [1.0, 2.0], "g", rtol=1e-9, atol=0.0, peer="PyTorch")


def test_scaled_atol_follows_the_largest_expected_entry():
    # 1e-7 off on an entry of 0 passes when the output's scale is 100 (atol 1e-9 x 100), not unscaled
    assert_close([0.0 + 1e-7, 100.0], [0.0, 100.0], "h", rtol=0.0, atol=1e-9, peer="Optax", scaled=True)
    with pytest.raises(AssertionError, match="atol 1e-09"):
        assert_close([0.0 + 1e-7, 100.0], [0.0, 100.0], "h", rtol=0.0, atol=1e-9, peer="Optax")


def test_missing_outputs_and_other_shapes_fail():
    with pytest.raises(AssertionError, match="missing, scikit-learn gives"):
        assert_close(None, [1.0], "loss", rtol=0, atol=0, peer="scikit-learn")
    with pytest.raises(AssertionError, match=r"shape \(2,\), scikit-learn's is \(1,\)"):
        assert_close([1.0, 1.0], [1.0], "loss", rtol=0, atol=0, peer="scikit-learn")


def test_every_reference_file_loads_with_cases():
    for name in ("pytorch_reference.json", "optax_reference.json", "sklearn_reference.json", "metrics_reference.json"):
        assert len(load(name)["cases"]) >= 50, name
