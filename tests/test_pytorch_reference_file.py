"""tests/data/pytorch_reference.json is complete, well-formed and self-consistent, without PyTorch.

The file (written by scripts/pytorch_reference.py) is what the torch.* family will be checked
against, so a corrupted, truncated or stale file must fail here: every loss of the spec's table,
every reduction it accepts, both dtypes; shapes by the spec's table; each reduced loss equal to its
reduction of per_sample by PyTorch's rules; and PyTorch's documented quirks (losses.md, peer-losses.md
§1) recomputed with NumPy from the recorded inputs.
"""

from __future__ import annotations

import ast
import math
import re
from collections import defaultdict

import numpy as np
import pytest

from .conftest import REPO, SHARED
from .pytorch_reference import TOLERANCES, assert_close, cases, check, nonfinite_cases, reference

SCRIPT = REPO / "scripts" / "pytorch_reference.py"
SPEC = SHARED / "spec" / "losses.md"
DTYPES = {"float64", "float32"}
INDEX_TARGETS = {"torch.nll_loss", "torch.multilabel_margin_loss", "torch.multi_margin_loss", "torch.ctc_loss"}
# per_sample shapes, by the spec's table
ELEMENTWISE = {"torch.l1_loss", "torch.mse_loss", "torch.huber_loss", "torch.smooth_l1_loss",
               "torch.binary_cross_entropy", "torch.binary_cross_entropy_with_logits", "torch.kl_div",
               "torch.poisson_nll_loss", "torch.hinge_embedding_loss", "torch.soft_margin_loss"}
WITHOUT_AXIS_1 = {"torch.cross_entropy", "torch.nll_loss", "torch.gaussian_nll_loss"}
PER_ROW = {"torch.margin_ranking_loss", "torch.multilabel_soft_margin_loss", "torch.multilabel_margin_loss",
           "torch.multi_margin_loss", "torch.cosine_embedding_loss", "torch.triplet_margin_loss"}
ALL_CASES = cases() + nonfinite_cases()


def script_constant(name: str):
    """A literal module-level constant of the script, read without running it (it imports torch)."""
    for node in ast.parse(SCRIPT.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{SCRIPT.name} has no constant {name}")


def spec_table_names() -> list[str]:
    text = SPEC.read_text()
    section = text[text.index("## PyTorch family"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"^\| `?(torch\.\w+)`? \|", section, flags=re.M)


def accepted_reductions(loss: str) -> set[str]:
    return {"mean", "sum", "none"} | ({"batchmean"} if loss == "torch.kl_div" else set())


def variant_of(case: dict) -> str:
    """The case id without its reduction and dtype: one input set of a loss."""
    return case["id"].rsplit("/", 2)[0]


def arrays(case: dict):
    """y_true (None if omitted), y_pred and the expected outputs as float64 arrays."""
    request, expected = case["request"], case["expected"]
    y_true = None if "y_true" not in request else np.asarray(request["y_true"], dtype=np.float64)
    return (y_true, np.asarray(request["y_pred"], dtype=np.float64),
            {k: np.asarray(v, dtype=np.float64) for k, v in expected.items()})


def per_sample_shape(loss: str, y_pred_shape: tuple) -> tuple:
    if loss in ELEMENTWISE:
        return y_pred_shape
    if loss in WITHOUT_AXIS_1:
        return y_pred_shape[:1] + y_pred_shape[2:] if len(y_pred_shape) > 1 else ()
    if loss in PER_ROW:
        return y_pred_shape[:1]
    assert loss == "torch.ctc_loss", loss
    return y_pred_shape[1:2]  # (T, N, C)


def index_targets(case: dict) -> bool:
    """Targets that are class indices: integers in the request, compared by PyTorch as int64."""
    if case["loss"] in INDEX_TARGETS:
        return True
    if case["loss"] != "torch.cross_entropy":
        return False
    return all(isinstance(v, int) for v in np.ravel(np.asarray(case["request"]["y_true"], dtype=object)))


def all_ignored(case: dict) -> bool:
    if case["loss"] not in ("torch.cross_entropy", "torch.nll_loss") or not index_targets(case):
        return False
    return bool(np.all(np.asarray(case["request"]["y_true"]) == case["request"]["params"].get("ignore_index", -100)))


# --------------------------------------------------------------------------- provenance and completeness


def test_the_scripts_losses_are_the_spec_tables_names():
    names = spec_table_names()
    assert len(names) == 20, f"{SPEC.name}'s PyTorch table lists {len(names)} losses: {names}"
    assert list(script_constant("LOSSES")) == names


def test_the_file_is_the_scripts_output_for_pytorch_2_13():
    data = reference()
    assert data["seed"] == script_constant("SEED"), "seed differs from the script's: regenerate the file"
    assert data["torch_version"].startswith(script_constant("TORCH_VERSION") + "."), data["torch_version"]
    assert data["torch_version"].startswith("2.13."), data["torch_version"]
    assert data["generated_by"] == "scripts/pytorch_reference.py"


def test_every_loss_has_every_accepted_reduction_in_both_dtypes_for_each_input_set():
    names = script_constant("LOSSES")
    grid = defaultdict(set)
    for case in ALL_CASES:
        grid[(case["loss"], variant_of(case))].add((case["request"]["reduction"], case["request"]["dtype"]))
    assert {loss for loss, _ in grid} == set(names)
    for (loss, variant), seen in grid.items():
        wanted = {(r, d) for r in accepted_reductions(loss) for d in DTYPES}
        assert seen == wanted, f"{variant}: missing {sorted(wanted - seen)}, unexpected {sorted(seen - wanted)}"
    finite = {(c["loss"], c["request"]["reduction"], c["request"]["dtype"]) for c in cases()}
    for loss in names:
        assert {(loss, r, d) for r in accepted_reductions(loss) for d in DTYPES} <= finite, loss


def test_case_ids_are_unique_and_name_their_loss_reduction_and_dtype():
    ids = [c["id"] for c in ALL_CASES]
    assert len(ids) == len(set(ids))
    for case in ALL_CASES:
        request = case["request"]
        assert case["id"] == f"{variant_of(case)}/{request['reduction']}/{request['dtype']}"
        assert case["id"].startswith(case["loss"] + "/")


def test_requests_are_in_the_wire_format():
    for case in ALL_CASES:
        request = case["request"]
        assert set(request) <= {"y_true", "y_pred", "params", "reduction", "dtype", "outputs"}, case["id"]
        assert ("y_true" in request) == (case["loss"] != "torch.triplet_margin_loss"), case["id"]
        assert request["dtype"] in DTYPES and request["reduction"] in accepted_reductions(case["loss"])
        assert set(case["expected"]) == {"loss", "per_sample", "gradient"}, case["id"]
        for name in ("weight", "pos_weight", "input_lengths", "target_lengths"):
            if name in request["params"]:
                assert isinstance(request["params"][name], list), f"{case['id']}: {name} is not a JSON array"
        if index_targets(case):
            assert np.asarray(request["y_true"]).dtype.kind == "i", f"{case['id']}: class indices are not integers"


def test_float32_cases_hold_float32_values():
    """The inputs are what a float32 client sends and the outputs what PyTorch's float32 kernels return."""
    checked = 0
    for case in cases():
        if case["request"]["dtype"] != "float32":
            continue
        request = case["request"]
        floats = [request["y_pred"], *case["expected"].values()]
        floats += [request["params"][k] for k in ("weight", "pos_weight") if k in request["params"]]
        if "y_true" in request and not index_targets(case):
            floats.append(request["y_true"])
        for values in floats:
            values = np.asarray(values, dtype=np.float64)
            assert np.array_equal(values.astype(np.float32).astype(np.float64), values), case["id"]
            checked += 1
    assert checked > 0


# --------------------------------------------------------------------------- shapes and reductions


def test_shapes_follow_the_spec_table():
    for case in ALL_CASES:
        loss, request = case["loss"], case["request"]
        y_pred_shape = np.shape(request["y_pred"])
        expected = case["expected"]
        assert np.shape(expected["gradient"]) == y_pred_shape, case["id"]
        per_sample = per_sample_shape(loss, y_pred_shape)
        assert np.shape(expected["per_sample"]) == per_sample, f"{case['id']}: {np.shape(expected['per_sample'])}"
        assert np.shape(expected["loss"]) == (per_sample if request["reduction"] == "none" else ()), case["id"]
        if loss in ("torch.margin_ranking_loss", "torch.cosine_embedding_loss", "torch.triplet_margin_loss",
                    "torch.gaussian_nll_loss"):
            assert y_pred_shape[1] == {"torch.triplet_margin_loss": 3}.get(loss, 2), f"{case['id']}: stacking axis"
        if loss == "torch.triplet_margin_loss":
            continue
        y_true_shape = np.shape(request["y_true"])
        if loss == "torch.ctc_loss":
            lengths = request["params"]["input_lengths"], request["params"]["target_lengths"]
            assert len(lengths[0]) == len(lengths[1]) == y_pred_shape[1], case["id"]
            assert max(lengths[0]) <= y_pred_shape[0], case["id"]
            if len(y_true_shape) == 1:  # the targets concatenated
                assert y_true_shape[0] == sum(lengths[1]), case["id"]
            else:  # padded (N, S)
                assert y_true_shape[0] == y_pred_shape[1] and max(lengths[1]) <= y_true_shape[1], case["id"]
        elif loss in WITHOUT_AXIS_1 and (index_targets(case) or loss == "torch.gaussian_nll_loss"):
            assert y_true_shape == per_sample, case["id"]
        elif loss in ("torch.margin_ranking_loss", "torch.cosine_embedding_loss", "torch.multi_margin_loss"):
            assert y_true_shape == y_pred_shape[:1], case["id"]
        else:
            assert y_true_shape == y_pred_shape, case["id"]


def denominator(case: dict) -> float:
    """What PyTorch divides the sum of per_sample by under the case's reduction (not for CTC's mean,
    which divides each sequence by its own target length)."""
    request = case["request"]
    reduction, params = request["reduction"], request["params"]
    if reduction in ("sum", "none"):
        return 1.0
    if reduction == "batchmean":
        return float(np.shape(request["y_pred"])[0])
    assert case["loss"] != "torch.ctc_loss", case["id"]
    if case["loss"] in ("torch.cross_entropy", "torch.nll_loss") and index_targets(case):
        # the summed class weights of the targets that are not ignored
        y = np.asarray(request["y_true"])
        classes = np.shape(request["y_pred"])[0 if np.ndim(request["y_pred"]) == 1 else 1]
        weight = np.asarray(params.get("weight", np.ones(classes)), dtype=np.float64)
        valid = y != params.get("ignore_index", -100)
        return float(weight[np.where(valid, y, 0)][valid].sum())
    return float(np.size(case["expected"]["per_sample"]))


def test_each_loss_is_pytorchs_reduction_of_its_per_sample():
    """mean/sum by PyTorch's rules, special cases included: class-weighted or ignored targets of
    cross_entropy/nll_loss divide by the summed weights of the valid targets (probability targets by
    the count), CTC's mean divides each sequence by its target length, batchmean by the batch."""
    for case in cases():
        _, _, expected = arrays(case)
        request, per_sample = case["request"], expected["per_sample"]
        if request["reduction"] == "none":
            assert np.array_equal(expected["loss"], per_sample), case["id"]
            continue
        if case["loss"] == "torch.ctc_loss" and request["reduction"] == "mean":
            lengths = np.maximum(np.asarray(request["params"]["target_lengths"], dtype=np.float64), 1.0)
            per_sequence = per_sample / lengths
            reduced, scale = per_sequence.mean(), np.abs(per_sequence).mean()
        else:
            reduced, scale = per_sample.sum() / denominator(case), np.abs(per_sample).sum() / denominator(case)
        rtol, atol = TOLERANCES[request["dtype"]]
        assert abs(float(expected["loss"]) - reduced) <= atol + rtol * scale, (
            f"{case['id']}: loss {float(expected['loss'])!r}, per_sample reduces to {reduced!r}")


def test_gradients_scale_with_the_reduction():
    """The gradient of sum is the gradient of none (the sum of per_sample), and the other reductions'
    are sum's divided by the loss's denominator (PyTorch's normalisers are constants of the input)."""
    by_variant = defaultdict(dict)
    for case in cases():
        by_variant[(variant_of(case), case["request"]["dtype"])][case["request"]["reduction"]] = case
    compared = 0
    for (variant, dtype), group in by_variant.items():
        total = np.asarray(group["sum"]["expected"]["gradient"], dtype=np.float64)
        assert_close(group["none"]["expected"]["gradient"], total, dtype, f"{variant}/none: gradient vs sum's")
        for reduction in set(group) - {"sum", "none"}:
            case = group[reduction]
            if case["loss"] == "torch.ctc_loss":
                continue
            assert_close(case["expected"]["gradient"], total / denominator(case), dtype,
                         f"{case['id']}: gradient vs sum's / {denominator(case)}")
            compared += 1
    assert compared > 0


def test_nonfinite_cases_are_exactly_pytorchs_nan_and_inf_answers():
    for case in nonfinite_cases():
        loss = case["expected"]["loss"]
        assert any(v in ("nan", "inf", "-inf") for v in np.ravel(np.asarray(loss, dtype=object))), case["id"]
        params = case["request"]["params"]
        if case["loss"] == "torch.ctc_loss":
            assert not params.get("zero_infinity", False), case["id"]
        else:
            assert all_ignored(case) and case["request"]["reduction"] == "mean", case["id"]
    for case in cases():
        assert not (all_ignored(case) and case["request"]["reduction"] == "mean"), case["id"]
    kinds = {(c["loss"], c["request"]["dtype"]) for c in nonfinite_cases()}
    for loss in ("torch.cross_entropy", "torch.nll_loss", "torch.ctc_loss"):
        assert {(loss, "float64"), (loss, "float32")} <= kinds, loss


# --------------------------------------------------------------------------- PyTorch's quirks, from the data


def float64_cases(loss: str, reduction: str = "sum") -> list[dict]:
    found = [c for c in cases() if c["loss"] == loss and c["request"]["dtype"] == "float64"
             and c["request"]["reduction"] == reduction]
    assert found, loss
    return found


def close64(actual, expected, where: str) -> None:
    assert_close(actual, expected, "float64", where)


def test_multi_margin_weights_after_the_power_and_gives_0_at_the_margin():
    """Σ_{i≠y} w_y·max(0, margin - x_y + x_i)^p / C: for p=2 w_y·z², not (w_y·z)²; the gradient
    counts only z > 0."""
    for case in float64_cases("torch.multi_margin_loss"):
        y, x, expected = arrays(case)
        y, params = y.astype(int), case["request"]["params"]
        n, c = x.shape
        p, margin = params.get("p", 1), params.get("margin", 1.0)
        weight = np.asarray(params.get("weight", np.ones(c)), dtype=np.float64)[y][:, None]
        z = margin - x[np.arange(n), y][:, None] + x
        z[np.arange(n), y] = 0.0
        positive = z > 0
        close64(expected["per_sample"], (weight * np.where(positive, z, 0.0) ** p).sum(1) / c, case["id"])
        dz = np.where(positive, weight * p * np.where(positive, z, 0.0) ** (p - 1) / c, 0.0)
        gradient = dz.copy()
        gradient[np.arange(n), y] = -dz.sum(1)
        close64(expected["gradient"], gradient, case["id"])


def test_triplet_adds_eps_to_the_difference():
    """d(u, v) = ‖u - v + eps‖_p (eps inside the norm, added to each difference); swap uses
    min(d(a, n), d(p, n))."""
    for case in float64_cases("torch.triplet_margin_loss", "none"):
        _, x, expected = arrays(case)
        params = case["request"]["params"]
        p, eps, margin = params.get("p", 2.0), params.get("eps", 1e-6), params.get("margin", 1.0)

        def distance(u, v):
            return (np.abs(u - v + eps) ** p).sum(-1) ** (1.0 / p)

        anchor, positive, negative = x[:, 0], x[:, 1], x[:, 2]
        d_an = distance(anchor, negative)
        if params.get("swap", False):
            d_an = np.minimum(d_an, distance(positive, negative))
        close64(expected["per_sample"], np.maximum(distance(anchor, positive) - d_an + margin, 0.0), case["id"])


def test_bce_floors_the_log_at_minus_100_and_the_gradients_denominator_at_float32_1e_12():
    """The backward kernel's floor is the float constant 1e-12, so in float64 too the denominator is
    float32(1e-12) = 9.999999960041972e-13 (at x = 0, y = 1 the gradient is -1000000003995.8029, not
    -1e12 as peer-losses.md §1 says)."""
    floor = float(np.float32(1e-12))
    floored = 0
    for case in float64_cases("torch.binary_cross_entropy"):
        y, x, expected = arrays(case)
        weight = np.asarray(case["request"]["params"].get("weight", 1.0), dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_x, log_1mx = np.maximum(np.log(x), -100.0), np.maximum(np.log1p(-x), -100.0)
        close64(expected["per_sample"], -weight * (y * log_x + (1 - y) * log_1mx), case["id"])
        close64(expected["gradient"], weight * (x - y) / np.maximum(x * (1 - x), floor), case["id"])
        floored += int(np.sum((x == 0) | (x == 1)))
    assert floored > 0


def test_gaussian_nll_clamps_the_variance_without_tracking_it():
    """v' = max(var, eps) under no_grad: the loss and both derivatives are the formula's at v', so the
    variance's gradient below eps is 0.5(1/eps - d²/eps²), not 0."""
    clamped = 0
    for case in float64_cases("torch.gaussian_nll_loss"):
        y, x, expected = arrays(case)
        params = case["request"]["params"]
        mean, var = x[:, 0], np.maximum(x[:, 1], params.get("eps", 1e-6))
        d = mean - y
        constant = 0.5 * math.log(2 * math.pi) if params.get("full", False) else 0.0
        close64(expected["per_sample"], 0.5 * (np.log(var) + d * d / var) + constant, case["id"])
        close64(expected["gradient"], np.stack([d / var, 0.5 * (1 / var - d * d / var**2)], axis=1), case["id"])
        clamped += int(np.sum(x[:, 1] < params.get("eps", 1e-6)))
    assert clamped > 0


def test_poisson_full_adds_stirling_only_where_the_target_exceeds_1():
    for case in float64_cases("torch.poisson_nll_loss", "none"):
        y, x, expected = arrays(case)
        params = case["request"]["params"]
        if params.get("log_input", True):
            value = np.exp(x) - y * x
        else:
            value = x - y * np.log(x + params.get("eps", 1e-8))
        if params.get("full", False):
            safe = np.where(y > 1, y, 2.0)
            value = value + np.where(y > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)
        close64(expected["per_sample"], value, case["id"])


def test_multilabel_margin_counts_repeats_and_stops_at_the_first_minus_1():
    for case in float64_cases("torch.multilabel_margin_loss", "none"):
        y, x, expected = arrays(case)
        want = []
        for targets, scores in zip(y.astype(int), x):
            listed = list(targets[:list(targets).index(-1)] if -1 in targets else targets)
            others = [i for i in range(len(scores)) if i not in listed]
            want.append(sum(max(0.0, 1 - (scores[j] - scores[i])) for j in listed for i in others) / len(scores))
        close64(expected["per_sample"], want, case["id"])


def test_cosine_embedding_adds_1e_12_under_each_squared_norm():
    for case in float64_cases("torch.cosine_embedding_loss", "none"):
        y, x, expected = arrays(case)
        a, b = x[:, 0], x[:, 1]
        cos = (a * b).sum(1) / np.sqrt(((a * a).sum(1) + 1e-12) * ((b * b).sum(1) + 1e-12))
        margin = case["request"]["params"].get("margin", 0.0)
        close64(expected["per_sample"], np.where(y == 1, 1 - cos, np.maximum(cos - margin, 0.0)), case["id"])


def test_clamp_min_losses_pass_the_full_gradient_at_the_margin():
    """margin_ranking and hinge_embedding are built on clamp_min: at exactly the margin the gradient
    is the active side's, unlike multi_margin's 0."""
    at_margin = 0
    for case in float64_cases("torch.margin_ranking_loss"):
        y, x, expected = arrays(case)
        margin = case["request"]["params"].get("margin", 0.0)
        active = (-y * (x[:, 0] - x[:, 1]) + margin) >= 0
        close64(expected["gradient"], np.stack([-y * active, y * active], axis=1), case["id"])
        at_margin += int(np.sum(-y * (x[:, 0] - x[:, 1]) + margin == 0))
    for case in float64_cases("torch.hinge_embedding_loss"):
        y, x, expected = arrays(case)
        margin = case["request"]["params"].get("margin", 1.0)
        close64(expected["gradient"], np.where(y == 1, 1.0, -1.0 * (margin - x >= 0)), case["id"])
        at_margin += int(np.sum((y == -1) & (x == margin)))
    assert at_margin >= 4  # two cases at the margin per loss (float64)


def test_ctc_gradient_assumes_a_log_softmax_and_stops_at_the_input_length():
    """Autograd's d loss / d log_probs is exp(log_probs) - γ (γ: the alignment posteriors, summing to
    1 over the classes of a frame) inside the input length and 0 after it; zero_infinity zeroes the
    gradient of an impossible sequence."""
    frames = 0
    for case in float64_cases("torch.ctc_loss"):
        _, log_probs, expected = arrays(case)
        params = case["request"]["params"]
        gradient, per_sample = expected["gradient"], expected["per_sample"]
        for n, length in enumerate(params["input_lengths"]):
            if params.get("zero_infinity", False) and per_sample[n] == 0.0:
                assert np.all(gradient[:, n] == 0.0), case["id"]
                continue
            inside = gradient[:length, n].sum(-1)
            close64(inside, np.exp(log_probs[:length, n]).sum(-1) - 1.0, f"{case['id']}: sequence {n}")
            assert np.all(gradient[length:, n] == 0.0), case["id"]
            frames += length
    assert frames > 0


def test_check_accepts_pytorchs_outputs_within_the_tolerances_only():
    for case in (next(c for c in cases() if c["request"]["dtype"] == dtype) for dtype in ("float64", "float32")):
        rtol, _ = TOLERANCES[case["request"]["dtype"]]
        check(case, case["expected"])
        for key in ("loss", "per_sample", "gradient"):
            within = {**case["expected"], key: (np.asarray(case["expected"][key]) * (1 + rtol / 2)).tolist()}
            check(case, within)
            beyond = {**case["expected"], key: (np.asarray(case["expected"][key]) * (1 + 3 * rtol) + 3 * rtol).tolist()}
            with pytest.raises(AssertionError, match=key):
                check(case, beyond)
            with pytest.raises(AssertionError, match="missing"):
                check(case, {k: v for k, v in case["expected"].items() if k != key})
        with pytest.raises(AssertionError, match="shape"):
            check(case, {**case["expected"], "gradient": np.ravel(case["expected"]["gradient"]).tolist()})
