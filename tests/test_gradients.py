"""Registry-driven derivative checks: every registered loss, its parameter variants, every
reduction and several sample-weight shapes, against central finite differences.

Nothing here names a loss: a loss added to the registry is covered automatically. Inputs come
from the loss's own sampler (the one /v1/exercises uses), at full precision so that no sample
sits on a kink. Each loss is checked under the reductions it accepts, with sample weights where
its family has them.

Where PyTorch's autograd is deliberately not the derivative of the formula, the exception is named
in ``PYTORCH_RULES`` and the test checks PyTorch's rule there instead, with the same tolerance.
Hessians are checked the same way, against central differences of these gradients, in
tests/test_hessians.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import all_losses, compute
from service.engine.params import BOOL, FLOAT
from service.engine.sampling import rng_for

H = 1e-6

pytestmark = pytest.mark.usefixtures("each_vector_math")


def param_variants(loss) -> list[dict]:
    """Defaults, each boolean flipped, each float parameter moved inside its interval, plus the
    combinations the loss declares in ``test_variants``."""
    variants: list[dict] = [{}]
    for p in loss.params:
        if p.kind == BOOL:
            variants.append({p.name: not p.default})
        elif p.kind == FLOAT and isinstance(p.default, float):
            for candidate in (p.default * 0.5 + 0.05, p.default * 1.5 + 0.1):
                if p.interval is None or p.interval.contains(candidate):
                    variants.append({p.name: candidate})
                    break
    variants.extend(getattr(loss, "test_variants", ()))
    return variants


def sample_shapes(loss) -> list[tuple[int, ...]]:
    return list(getattr(loss, "test_shapes", (loss.sample_shape,)))


CASES = [(loss, params, shape) for loss in all_losses() for params in param_variants(loss)
         for shape in sample_shapes(loss)]


def gaussian_nll_straight_through(inputs, params, reduction, numeric):
    """torch.gaussian_nll_loss clamps the variance at eps under no_grad: where var < eps the formula
    is flat in the variance (central differences give 0) but autograd passes the gradient at eps,
    0.5 (1/eps - d^2/eps^2), straight through to the variance."""
    eps = params.get("eps", 1e-6)
    x = np.asarray(inputs["y_pred"])
    d = x[:, 0] - inputs["y_true"]
    upstream = _upstream(reduction, d.shape)
    clamped = x[:, 1] < eps
    out = numeric.copy()
    out[:, 1] = np.where(clamped, upstream * 0.5 * (1 / eps - d * d / eps**2), numeric[:, 1])
    return out


def ctc_assumes_a_log_softmax(inputs, params, reduction, numeric):
    """torch.ctc_loss's autograd gradient for log_probs is exp(x) - γ, the gradient with respect to
    the logits of a log_softmax in front, where the formula's derivative is -γ: it adds exp(x) times
    the sequence's upstream on the frames inside its input length (mean: 1 / (N max(S_n, 1)))."""
    x = np.asarray(inputs["y_pred"])  # (T, N, C)
    T, N, _ = x.shape
    input_lengths = np.asarray(params["input_lengths"])
    target_lengths = np.asarray(params["target_lengths"])
    upstream = 1 / (N * np.maximum(target_lengths, 1)) if reduction == "mean" else np.ones(N)
    used = np.arange(T)[:, None] < input_lengths[None, :]  # (T, N)
    return numeric + np.where(used[:, :, None], upstream[None, :, None] * np.exp(x), 0)


PYTORCH_RULES = {"torch.gaussian_nll_loss": gaussian_nll_straight_through,
                 "torch.ctc_loss": ctc_assumes_a_log_softmax}


def _upstream(reduction, per_sample_shape):
    """d loss / d per_sample under the PyTorch reductions (every per-sample value weighs the same)."""
    return {"mean": 1 / int(np.prod(per_sample_shape)), "batchmean": 1 / per_sample_shape[0]}.get(reduction, 1.0)


def _weights(loss, rng, per_sample_shape):
    if not loss.reducer.sample_weight:
        return [None]
    out = [None, 0.7]
    if per_sample_shape:
        out.append(rng.uniform(0.5, 2.0, per_sample_shape))
        out.append(rng.uniform(0.5, 2.0, per_sample_shape + (1,)))
    return out


def _scalar(loss, inputs, params, weight, reduction, y_pred):
    r = compute(loss, inputs["y_true"], y_pred, params=params, sample_weight=weight, reduction=reduction,
                outputs=("loss",))
    return float(np.sum(r.loss))


@pytest.mark.parametrize("loss,params,shape", CASES,
                         ids=[f"{l.name}-{p}-{s}" for l, p, s in CASES])
def test_gradient_matches_central_differences(loss, params, shape):
    rng = rng_for(1234)
    inputs = loss.sample(rng, shape, {**{q.name: q.default for q in loss.params}, **params})
    params = {**params, **inputs.get("params", {})}  # parameters drawn with the data (CTC's lengths)
    x0 = np.asarray(inputs["y_pred"], dtype=np.float64)
    base = compute(loss, inputs["y_true"], x0, params=params, reduction="none", outputs=("per_sample",))
    checked = 0
    for weight in _weights(loss, rng, tuple(base.per_sample.shape)):
        for reduction in loss.reductions:
            r = compute(loss, inputs["y_true"], x0, params=params, sample_weight=weight, reduction=reduction,
                        outputs=("loss", "gradient"))
            assert r.gradient.shape == x0.shape
            numeric = np.zeros_like(x0)
            for idx in np.ndindex(x0.shape):
                up, down = x0.copy(), x0.copy()
                up[idx] += H
                down[idx] -= H
                numeric[idx] = (_scalar(loss, inputs, params, weight, reduction, up)
                                - _scalar(loss, inputs, params, weight, reduction, down)) / (2 * H)
            if loss.name in PYTORCH_RULES:
                numeric = PYTORCH_RULES[loss.name](inputs, params, reduction, numeric)
            scale = max(1.0, float(np.abs(numeric).max()))
            np.testing.assert_allclose(
                r.gradient, numeric, rtol=1e-4, atol=1e-6 * scale,
                err_msg=f"{loss.name} params={params} weight={weight!r} reduction={reduction}")
            checked += 1
    assert checked >= len(loss.reductions)


def test_every_loss_is_covered():
    covered = {loss.name for loss, _, _ in CASES}
    assert covered == {loss.name for loss in all_losses()}
    assert len(covered) >= 11


def test_the_pytorch_rules_are_exercised():
    """Each named exception meets inputs where it applies (else it would excuse nothing)."""
    for name, rule in PYTORCH_RULES.items():
        hit = False
        for loss, params, shape in CASES:
            if loss.name != name:
                continue
            inputs = loss.sample(rng_for(1234), shape, {**{q.name: q.default for q in loss.params}, **params})
            numeric = np.zeros_like(np.asarray(inputs["y_pred"], dtype=float))
            hit |= bool(np.any(rule(inputs, {**params, **inputs.get("params", {})}, "sum", numeric) != numeric))
        assert hit, name


@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_ce_with_the_class_axis_first_is_the_transposed_problem(from_logits):
    """Labels on the last axis use flat positions, on other axes take_along_axis: the two routes agree."""
    rng = rng_for(99)
    x = rng.uniform(0.1, 1.0, (5, 4))
    labels = rng.integers(0, 5, 4).astype(float)
    outputs = ("per_sample", "gradient", "hessian")
    first = compute("sparse_categorical_crossentropy", labels, x, params={"axis": 0, "from_logits": from_logits},
                    outputs=outputs)
    last = compute("sparse_categorical_crossentropy", labels, x.T.copy(), params={"from_logits": from_logits},
                   outputs=outputs)
    np.testing.assert_allclose(first.per_sample, last.per_sample, rtol=1e-14)
    np.testing.assert_allclose(first.gradient, last.gradient.T, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(first.hessian, last.hessian.T, rtol=1e-14, atol=1e-16)
    assert np.abs(first.gradient).sum() > 0
