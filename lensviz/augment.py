"""The 8 symmetries of the square, applied jointly and spin-2-correctly to (ε, κ).

A symmetry index ``g`` in ``0 … 7`` encodes three bits, applied in this order:

* bit 2 (``g & 4``): transpose, ``x ↔ y``;
* bit 1 (``g & 2``): flip the y axis (rows);
* bit 0 (``g & 1``): flip the x axis (columns).

Together they generate the dihedral group D4: ``g = 0`` is the identity,
``g = 6`` (transpose, then flip rows) is a 90° rotation, ``g = 3`` a 180° rotation.

Spin 2
    ``e = e1 + i e2`` transforms with ``e^{2iθ}``. From the KS93 kernel
    (:mod:`lensviz.inversion`): a transpose swaps ``k1 ↔ k2``, so ``k1² − k2²``
    changes sign and **e1 is negated**; a flip of either axis negates ``k1 k2``, so
    **e2 is negated**. A 90° rotation (transpose + flip) negates both, as ``e^{iπ}``
    says. Δε and κ are scalars: their pixels move, their values don't. The test that
    settles it is ``ks93(augment(ε)) == augment(ks93(ε))`` for all 8 symmetries.

The same symmetries in TensorFlow, for ``tf.data`` pipelines, are
:func:`lensviz.nn.pipelines.apply_symmetry_tf` and
:func:`lensviz.nn.pipelines.random_symmetry_tf`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "N_SYMMETRIES",
    "symmetry_signs",
    "transform_maps",
    "inverse_transform_maps",
    "apply_symmetry",
    "random_symmetry",
]

N_SYMMETRIES = 8


def _check_g(g: int) -> int:
    if int(g) != g or not 0 <= g < N_SYMMETRIES:
        raise ValueError(f"symmetry index must be an integer in 0..7, got {g!r}")
    return int(g)


def symmetry_signs(g: int) -> tuple[int, int]:
    """Signs ``(s1, s2)`` that multiply ``(e1, e2)`` under symmetry ``g``.

    Their product is the parity of ``g``: −1 for the four mirror symmetries, under
    which the B mode (a pseudo-scalar) changes sign while κ_E does not.
    """
    g = _check_g(g)
    s1 = -1 if g & 4 else 1
    s2 = -1 if bool(g & 2) != bool(g & 1) else 1
    return s1, s2


def transform_maps(maps, g: int, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """Move the pixels of scalar maps by symmetry ``g`` (no sign changes).

    Parameters
    ----------
    maps : array_like
        Maps whose ``(y, x)`` axes are ``axes``: ``(-2, -1)`` for ``(..., ny, nx)``,
        ``(-3, -2)`` for channels-last ``(..., ny, nx, C)``.
    g : int
        Symmetry index, 0 … 7.
    """
    g = _check_g(g)
    out = np.asarray(maps)
    ay, ax = axes
    if out.shape[ay] != out.shape[ax] and g & 4:
        raise ValueError(f"transposing needs square maps, got shape {out.shape}")
    if g & 4:
        out = np.swapaxes(out, ay, ax)
    if g & 2:
        out = np.flip(out, axis=ay)
    if g & 1:
        out = np.flip(out, axis=ax)
    return np.ascontiguousarray(out)


def inverse_transform_maps(maps, g: int, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """Undo :func:`transform_maps` (flips first, then the transpose)."""
    g = _check_g(g)
    out = np.asarray(maps)
    ay, ax = axes
    if g & 1:
        out = np.flip(out, axis=ax)
    if g & 2:
        out = np.flip(out, axis=ay)
    if g & 4:
        out = np.swapaxes(out, ay, ax)
    return np.ascontiguousarray(out)


def apply_symmetry(epsilon, kappa, g: int):
    """Apply symmetry ``g`` to ε ``(..., ny, nx, 3)`` and κ ``(..., ny, nx)`` together.

    ``kappa`` may be None (ε only). Returns ``(epsilon, kappa)`` as new arrays.

    Examples
    --------
    >>> eps = np.zeros((4, 4, 3)); eps[0, 1] = (0.1, 0.2, 0.3)
    >>> kappa = np.arange(16.0).reshape(4, 4)
    >>> e_rot, k_rot = apply_symmetry(eps, kappa, 6)   # 90° rotation: pixels move, e1, e2 flip
    >>> bool((k_rot == np.rot90(kappa)).all()), e_rot[2, 0].tolist()
    (True, [-0.1, -0.2, 0.3])
    """
    eps = np.asarray(epsilon)
    if eps.ndim < 3 or eps.shape[-1] < 2:
        raise ValueError(f"epsilon must be channels-last (..., ny, nx, C>=2), got {eps.shape}")
    s1, s2 = symmetry_signs(g)
    out = transform_maps(eps, g, axes=(-3, -2)).copy()
    out[..., 0] *= s1
    out[..., 1] *= s2
    k = None if kappa is None else transform_maps(kappa, g)
    return out, k


def random_symmetry(epsilon, kappa, rng: np.random.Generator):
    """Apply one uniformly drawn symmetry; returns ``(epsilon, kappa, g)``."""
    g = int(rng.integers(N_SYMMETRIES))
    eps, k = apply_symmetry(epsilon, kappa, g)
    return eps, k, g
