"""The link module (service/engine/link.py) and the sklearn.* objectives beyond their reference file:
the links' derivatives against finite differences, the chain rule against differentiating the
composed function, each objective equal to its natural-scale loss composed with its link, the
hessian parameter, shapes and domains as problem+json 422s naming the index."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import all_losses, compute, get_loss
from service.engine.errors import DomainError, ParameterError, ShapeError
from service.engine.link import (HALF_LOGIT, IDENTITY, LINKS, LOG, LOGIT, compose, compose_normalised, compose_softmax,
                                 softmax_inverse)

H = 1e-5
OBJECTIVES = [loss for loss in all_losses() if loss.family == "gradient-boosting"]
R = np.linspace(-3.0, 3.0, 13)


@pytest.mark.parametrize("link", list(LINKS.values()), ids=list(LINKS))
def test_link_derivatives_match_central_differences(link):
    mu = link.inverse(R)
    d1 = (link.inverse(R + H) - link.inverse(R - H)) / (2 * H)
    d2 = (link.inverse(R + H) - 2 * mu + link.inverse(R - H)) / H**2
    np.testing.assert_allclose(link.first(R, mu), d1, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(link.second(R, mu), d2, rtol=1e-4, atol=1e-5)


def test_the_links_are_sklearns_inverse_links():
    np.testing.assert_allclose(LOG.inverse(R), np.exp(R), rtol=1e-15)
    np.testing.assert_allclose(LOGIT.inverse(R), 1 / (1 + np.exp(-R)), rtol=1e-15)
    np.testing.assert_allclose(HALF_LOGIT.inverse(R), 1 / (1 + np.exp(-2 * R)), rtol=1e-15)
    assert np.array_equal(IDENTITY.inverse(R), R)


@pytest.mark.parametrize("link", list(LINKS.values()), ids=list(LINKS))
def test_compose_is_the_chain_rule_of_a_natural_scale_loss(link):
    """L(mu) = cos(mu) + mu^3 / 3: compose's raw derivatives are those of r -> L(h(r))."""
    loss = lambda m: np.cos(m) + m**3 / 3
    mu = link.inverse(R)
    g_raw, h_raw = compose(link, R, -np.sin(mu) + mu**2, -np.cos(mu) + 2 * mu)
    f = lambda r: loss(link.inverse(r))
    np.testing.assert_allclose(g_raw, (f(R + H) - f(R - H)) / (2 * H), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(h_raw, (f(R + H) - 2 * f(R) + f(R - H)) / H**2, rtol=1e-4, atol=1e-5)
    assert compose(link, R, mu)[1] is None


def test_compose_softmax_is_the_chain_rule_through_the_softmax():
    """A loss separable in the class probabilities, L(mu) = sum_j c_j mu_j^2 + log mu_j: the raw gradient
    and the diagonal of the raw Hessian are those of r -> L(softmax(r))."""
    rng = np.random.default_rng(3)
    r = rng.normal(0, 1, (4, 5))
    c = rng.uniform(0.5, 2.0, 5)
    f = lambda z: (c * softmax_inverse(z) ** 2 + np.log(softmax_inverse(z))).sum(axis=-1)
    mu = softmax_inverse(r)
    g_raw, h_raw = compose_softmax(mu, 2 * c * mu + 1 / mu, 2 * c - 1 / mu**2)
    for k in range(5):
        e, wide = np.zeros(5), np.zeros(5)
        e[k], wide[k] = H, 1e-3  # the second difference wants a wider step: its rounding grows as 1/step^2
        np.testing.assert_allclose(g_raw[:, k], (f(r + e) - f(r - e)) / (2 * H), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(h_raw[:, k], (f(r + wide) - 2 * f(r) + f(r - wide)) / 1e-6, rtol=1e-4, atol=1e-5)


def test_compose_normalised_is_the_chain_rule_through_the_row_renormalisation():
    """Keras's probability path q = x / sum(x) (the categorical focal loss's): L(q) = sum_j c_j q_j^2 + log q_j."""
    rng = np.random.default_rng(6)
    x = rng.uniform(0.1, 1.0, (4, 5))
    c = rng.uniform(0.5, 2.0, 5)
    norm = lambda z: z / z.sum(axis=-1, keepdims=True)
    f = lambda z: (c * norm(z) ** 2 + np.log(norm(z))).sum(axis=-1)
    total = x.sum(axis=-1, keepdims=True)
    q = x / total
    g_raw, h_raw = compose_normalised(q, total, 2 * c * q + 1 / q, 2 * c - 1 / q**2)
    for k in range(5):
        e, wide = np.zeros(5), np.zeros(5)
        e[k], wide[k] = H, 1e-3
        np.testing.assert_allclose(g_raw[:, k], (f(x + e) - f(x - e)) / (2 * H), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(h_raw[:, k], (f(x + wide) - 2 * f(x) + f(x - wide)) / 1e-6, rtol=1e-4, atol=1e-5)


def test_compose_softmax_of_the_cross_entropy_is_p_minus_onehot_and_p_one_minus_p():
    rng = np.random.default_rng(4)
    r = rng.normal(0, 2, (6, 3))
    labels = rng.integers(0, 3, 6)
    mu = softmax_inverse(r)
    onehot = np.eye(3)[labels]
    g_raw, h_raw = compose_softmax(mu, -onehot / mu, onehot / mu**2)
    np.testing.assert_allclose(g_raw, mu - onehot, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h_raw, mu * (1 - mu), rtol=1e-12, atol=1e-15)


# each objective on its natural scale mu: (loss, dL/dmu, d2L/dmu2), without the constants scikit-learn drops
NATURAL = {
    "sklearn.half_squared_error": lambda y, m: (0.5 * (m - y) ** 2, m - y, np.ones_like(m)),
    "sklearn.half_poisson": lambda y, m: (m - y * np.log(m), 1 - y / m, y / m**2),
    "sklearn.half_gamma": lambda y, m: (np.log(m) + y / m, 1 / m - y / m**2, -1 / m**2 + 2 * y / m**3),
    "sklearn.half_tweedie": lambda y, m: (m**0.5 / 0.5 + 2 * y * m**-0.5, m**-0.5 - y * m**-1.5,
                                          -0.5 * m**-1.5 + 1.5 * y * m**-2.5),
    "sklearn.half_tweedie_identity": lambda y, m: (m**0.5 / 0.5 + 2 * y * m**-0.5 - 4 * y**0.5, m**-0.5 - y * m**-1.5,
                                                   -0.5 * m**-1.5 + 1.5 * y * m**-2.5),
    "sklearn.half_binomial": lambda y, m: (-y * np.log(m) - (1 - y) * np.log(1 - m), (m - y) / (m * (1 - m)),
                                           y / m**2 + (1 - y) / (1 - m) ** 2),
    "sklearn.exponential": lambda y, m: (y * np.sqrt((1 - m) / m) + (1 - y) * np.sqrt(m / (1 - m)),
                                         -0.5 * y * m**-1.5 * (1 - m) ** -0.5 + 0.5 * (1 - y) * m**-0.5 * (1 - m) ** -1.5,
                                         0.75 * y * m**-2.5 * (1 - m) ** -0.5 - 0.25 * y * m**-1.5 * (1 - m) ** -1.5
                                         - 0.25 * (1 - y) * m**-1.5 * (1 - m) ** -1.5
                                         + 0.75 * (1 - y) * m**-0.5 * (1 - m) ** -2.5),
}


@pytest.mark.parametrize("name", sorted(NATURAL))
def test_each_objective_is_its_natural_scale_loss_through_its_link(name):
    """The raw-scale formulas (scikit-learn's, link merged in) are the natural-scale loss composed with the
    link the objective declares (NATURAL writes the value as scikit-learn keeps it, constants dropped or not)."""
    loss = get_loss(name)
    rng = np.random.default_rng(5)
    y = rng.uniform(0.2, 0.8, 9) if loss.link in (LOGIT, HALF_LOGIT) else rng.uniform(0.5, 3.0, 9)
    r = rng.uniform(0.3, 2.0, 9) if loss.link is IDENTITY else rng.normal(0, 1, 9)
    out = compute(name, y, r, reduction="none", outputs=("loss", "gradient", "hessian"))
    value, g, hess = NATURAL[name](y, loss.link.inverse(r))
    g_raw, h_raw = compose(loss.link, r, g, hess)
    np.testing.assert_allclose(out.gradient, g_raw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.hessian, h_raw, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.loss, value, rtol=1e-10)


def test_hessian_exact_is_zero_only_where_sklearn_replaces_it():
    y, r = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 3.0])
    for loss in OBJECTIVES:
        x = np.array([[0.1, 0.2], [0.3, -0.1], [0.0, 1.0]]) if loss.name == "sklearn.half_multinomial" else r
        labels = np.array([0.0, 1.0, 1.0]) if loss.name in ("sklearn.half_binomial", "sklearn.exponential",
                                                              "sklearn.half_multinomial") else y + 0.5
        default = compute(loss, labels, x, reduction="sum", outputs=("hessian",)).hessian
        exact = compute(loss, labels, x, reduction="sum", params={"hessian": "exact"}, outputs=("hessian",)).hessian
        if loss.name in ("sklearn.absolute_error", "sklearn.pinball_loss"):
            assert np.all(default == 1) and np.all(exact == 0), loss.name
            assert not loss.hessian_is_second_derivative({"hessian": "sklearn"})
            assert loss.hessian_is_second_derivative({"hessian": "exact"})
        else:
            np.testing.assert_array_equal(default, exact, err_msg=loss.name)
            assert loss.hessian_is_second_derivative({"hessian": "sklearn"}), loss.name


def test_the_absolute_errors_gradient_at_a_tie_is_minus_one():
    r = compute("sklearn.absolute_error", [1.0, 2.0], [1.0, 3.0], reduction="sum", outputs=("gradient",))
    assert r.gradient.tolist() == [-1.0, 1.0]


def test_weights_scale_the_sum_reductions_gradient_and_hessian_exactly():
    y, x, w = np.array([0.0, 2.0, 5.0]), np.array([0.1, 0.5, 1.5]), np.array([0.5, 2.0, 1.25])
    plain = compute("sklearn.half_poisson", y, x, reduction="sum", outputs=("gradient", "hessian"))
    weighted = compute("sklearn.half_poisson", y, x, sample_weight=w, reduction="sum", outputs=("gradient", "hessian"))
    assert np.array_equal(weighted.gradient, plain.gradient * w)
    assert np.array_equal(weighted.hessian, plain.hessian * w)


def test_binomial_is_stable_far_from_zero():
    """At r = 40 with y = 1, 1 - expit(r) rounds to 0, but scikit-learn's forms give the gradient -e^-40 and
    the Hessian e^-40; at r = -800 (e^r underflows) the gradient is -1 and the loss 800."""
    r = compute("sklearn.half_binomial", [1.0, 1.0, 0.0], [40.0, -800.0, 800.0], reduction="none",
                outputs=("loss", "gradient", "hessian"))
    np.testing.assert_allclose(r.gradient[0], -np.exp(-40.0), rtol=1e-12)
    np.testing.assert_allclose(r.hessian[0], np.exp(-40.0), rtol=1e-12)
    assert r.gradient[1] == -1.0 and r.loss[1] == 800.0 and r.loss[2] == 800.0 and r.gradient[2] == 1.0


@pytest.mark.anyio
@pytest.mark.parametrize("name,y_true,y_pred,loc", [
    ("sklearn.half_poisson", [1.0, -0.5], [0.0, 0.0], ["y_true", 1]),
    ("sklearn.half_gamma", [1.0, 0.0], [0.0, 0.0], ["y_true", 1]),
    ("sklearn.half_binomial", [1.0, 0.0, 1.5], [0.0, 0.0, 0.0], ["y_true", 2]),
    ("sklearn.exponential", [-1.0], [0.0], ["y_true", 0]),
    ("sklearn.half_tweedie", [1.0, -1.0], [0.0, 0.0], ["y_true", 1]),
    ("sklearn.half_tweedie_identity", [1.0, 1.0], [1.0, 0.0], ["y_pred", 1]),
    ("sklearn.half_multinomial", [0.0, 3.0], [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]], ["y_true", 1]),
    ("sklearn.half_multinomial", [0.0, 0.5], [[0.0, 1.0], [0.0, 1.0]], ["y_true", 1]),
])
async def test_domain_errors_are_422s_naming_the_index(client, name, y_true, y_pred, loc):
    response = await client.post(f"/v1/losses/{name}", json={"y_true": y_true, "y_pred": y_pred})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == loc, response.text


def test_tweedie_domains_follow_the_power():
    compute("sklearn.half_tweedie", [-1.0], [0.0], params={"power": 0.0})  # real targets at p = 0
    with pytest.raises(DomainError):
        compute("sklearn.half_tweedie", [0.0], [0.0], params={"power": 2.5})  # y > 0 from p = 2
    compute("sklearn.half_tweedie_identity", [1.0], [-2.0], params={"power": 0.0})  # any raw at p = 0


@pytest.mark.parametrize("y_true,y_pred", [([1.0, 2.0], [[1.0], [2.0]]), ([1.0, 2.0], [1.0, 2.0, 3.0]),
                                           ([[1.0, 2.0]], [[1.0, 2.0]])])
def test_shapes_other_than_n_are_refused(y_true, y_pred):
    with pytest.raises(ShapeError, match=r"shape \[n\]"):
        compute("sklearn.half_squared_error", y_true, y_pred)


def test_multinomial_wants_labels_n_and_scores_n_by_k():
    with pytest.raises(ShapeError, match=r"\[n, K\]"):
        compute("sklearn.half_multinomial", [0.0, 1.0], [0.0, 1.0])


@pytest.mark.parametrize("value", ["Exact", 1, None, True])
def test_the_hessian_parameter_takes_sklearn_or_exact_only(value):
    with pytest.raises(ParameterError, match="'sklearn', 'exact'"):
        compute("sklearn.absolute_error", [1.0], [0.0], params={"hessian": value})


def test_names_and_catalogue_entries():
    assert len(OBJECTIVES) == 11
    assert get_loss("sklearn.HalfSquaredError").name == "sklearn.half_squared_error"
    assert get_loss("sklearn.HalfPoissonLoss").name == "sklearn.half_poisson"
    assert get_loss("sklearn._loss.loss.HalfMultinomialLoss").name == "sklearn.half_multinomial"
    assert get_loss("huber_loss").name == "huber"  # the Keras name is not taken over
    for loss in OBJECTIVES:
        entry = loss.describe()
        assert entry["hessian"] and entry["family"] == "gradient-boosting", loss.name
        assert "hessian" in [p["name"] for p in entry["params"]], loss.name
        assert "Hessian" in entry["notes"] and "sample_weight" in entry["notes"], loss.name
        assert entry["references"]["sklearn"].startswith("sklearn._loss.loss."), loss.name
    for name in ("sklearn.absolute_error", "sklearn.pinball_loss"):
        assert "Newton step" in get_loss(name).notes and "gradient step" in get_loss(name).notes


def test_float32_requests_are_computed_in_float64_and_rounded_once():
    """As scikit-learn's Cython: 0.5 (r - y)^2 for r - y = 1 + 2^-12 is exact in float64, and rounds
    once to float32."""
    y, r = np.float32(1.0), np.float32(2.0 + 2.0**-12)
    out = compute("sklearn.half_squared_error", [y], [r], dtype="float32", reduction="none", outputs=("loss",))
    assert out.loss.dtype == np.float32
    assert out.loss[0] == np.float32(0.5 * (float(r) - float(y)) ** 2)
