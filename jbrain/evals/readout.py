"""A linear readout trained by gradient descent: the evaluations' reference
rows (non-spiking, on the host's side of the measurement, never part of a
brain or its chat).

Multinomial logistic regression: scores = x W + b, loss = mean
cross-entropy + l2 |W|^2, full-batch Adam (written out) on `jax.grad` for
`steps` steps from zero weights, the whole fit one jitted `lax.scan`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def softmax_regression(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    classes: int,
    *,
    l2: float = 1e-3,
    steps: int = 500,
    lr: float = 0.05,
) -> np.ndarray:
    """Fit on x_train (n, d) f32 with labels y_train (n,) int in [0,
    classes); returns the predicted labels (m,) of x_test (m, d)."""
    xtr, xte = jnp.asarray(x_train, jnp.float32), jnp.asarray(x_test, jnp.float32)
    ytr = jnp.asarray(y_train, jnp.int32)

    def loss(params):
        w, b = params
        logp = jax.nn.log_softmax(xtr @ w + b)
        return -jnp.take_along_axis(logp, ytr[:, None], 1).mean() + l2 * jnp.sum(w * w)

    @jax.jit
    def fit(params):
        def adam(carry, t):
            params, m, v = carry
            g = jax.grad(loss)(params)
            m = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
            v = jax.tree.map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
            c1, c2 = 1 - 0.9**t, 1 - 0.999**t
            params = jax.tree.map(lambda x, a, b: x - lr * (a / c1) / (jnp.sqrt(b / c2) + 1e-8), params, m, v)
            return (params, m, v), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        (params, _, _), _ = jax.lax.scan(
            adam, (params, zeros, zeros), jnp.arange(1, steps + 1, dtype=jnp.float32)
        )
        return params

    w, b = fit((jnp.zeros((xtr.shape[1], classes)), jnp.zeros((classes,))))
    return np.asarray(jnp.argmax(xte @ w + b, 1))
