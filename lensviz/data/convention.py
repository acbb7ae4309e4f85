"""Re-expressing foreign ε in lensviz's sign and axis conventions."""

from __future__ import annotations

import numpy as np

from lensviz.data.validate import validate_epsilon

__all__ = ["apply_convention"]


def apply_convention(
    eps, *, negate_e1: bool = False, negate_e2: bool = False, transpose: bool = False
) -> np.ndarray:
    """Re-express ε given in another convention in lensviz's.

    This is not a symmetry of the sky (see :mod:`lensviz.augment` for those): it fixes
    data whose components have the opposite sign or whose maps are stored with x and y
    swapped relative to κ. :func:`lensviz.evaluation.convention_scores` finds which
    variant a dataset needs.

    Parameters
    ----------
    eps : array_like, shape (N, ny, nx, 3)
        Any layout :func:`lensviz.data.validate_epsilon` takes.
    negate_e1, negate_e2 : bool, optional
        Flip the sign of that component.
    transpose : bool, optional
        Swap the pixel axes y and x of all three channels (components unchanged).

    Returns
    -------
    ndarray, shape (N, ny, nx, 3), float32
        A new array; sign flips and the transpose commute.
    """
    out = validate_epsilon(eps, "eps").copy()
    if negate_e1:
        out[..., 0] *= -1
    if negate_e2:
        out[..., 1] *= -1
    if transpose:
        out = np.ascontiguousarray(out.transpose(0, 2, 1, 3))
    return out
