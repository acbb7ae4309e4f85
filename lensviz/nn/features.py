"""What a noise-aware UNet reads: features of ``(e1, e2, Δε)`` computed inside the model.

One set of weights must serve every survey depth, from a few galaxies per arcmin² to no
shape noise at all. The network can only do that if it is told, pixel by pixel, how much
to trust each measurement, and if it does not have to learn the non-local KS93 inversion
from scratch. :class:`LensingFeatures` is the model's first layer and turns the raw
challenge channels into five:

``e1``, ``e2``
    The ellipticities, set to 0 where the pixel is empty (``Δε ≥ EMPTY_PIXEL_SIGMA``).
``weight``
    The inverse-variance weight of the pixel, normalised to [0, 1]:

    .. math::

        w = \\frac{\\sigma_\\mathrm{ref}^2}{\\Delta\\epsilon^2 + \\sigma_\\mathrm{ref}^2}

    1 for a noise-free pixel (Δε = 0), ≈ 0.5 at LSST depth (Δε ≈ σ_ref), and exactly 0
    for an empty or masked pixel. This is how the network reads the noise, and the mask.
``kappa_E``, ``kappa_B``
    The KS93 E and B modes of the (masked) ellipticities, zero-padded by ``ks_pad``
    pixels per side (:func:`lensviz.inversion.ks93`'s convention and Fourier grid, computed
    here with TensorFlow's FFT so the layer runs inside the graph and on the GPU). At high
    signal-to-noise the network then mostly corrects KS93's border, mask, reduced-shear and
    mass-sheet errors; the B mode shows it the noise and the leakage that masks cause.

Because the features live inside the model, a saved ``.keras`` file takes the raw
``(N, ny, nx, 3)`` cube like every other lensviz model, and nothing outside the model has
to be kept in step with it.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lensviz import constants
from lensviz.inversion import fourier_kernels

__all__ = ["FEATURES", "SIGMA_REF", "KS_PAD_PX", "LensingFeatures"]

#: Names of the output channels of :class:`LensingFeatures`, in order.
FEATURES = ("e1", "e2", "weight", "kappa_E", "kappa_B")
#: Δε at which a pixel's weight is 1/2: about the per-pixel noise at LSST depth
#: (σ_e / √(n_gal A_pix) = 0.26 / √7.5 ≈ 0.095).
SIGMA_REF = 0.1
#: Zero-padding per side [pixels] of the in-model KS93 (half a 128-pixel field).
KS_PAD_PX = 64


@keras.saving.register_keras_serializable(package="lensviz")
class LensingFeatures(keras.layers.Layer):
    """``(N, ny, nx, 3)`` ``(e1, e2, Δε)`` → ``(N, ny, nx, 5)`` :data:`FEATURES`.

    Parameters
    ----------
    sigma_ref : float
        Δε at which the weight channel is 1/2 (:data:`SIGMA_REF`), > 0.
    ks_pad : int
        Zero-padding per side of the KS93 channels (:data:`KS_PAD_PX`), ≥ 0.
    empty_sigma : float
        Δε at or above which a pixel is empty
        (:data:`lensviz.constants.EMPTY_PIXEL_SIGMA`).

    Raises
    ------
    ValueError
        For a non-positive ``sigma_ref`` or ``empty_sigma``, or a negative ``ks_pad``.

    Examples
    --------
    >>> import numpy as np
    >>> eps = np.zeros((2, 128, 128, 3), np.float32)   # (N, 128, 128, 3)
    >>> LensingFeatures()(eps).shape                    # channels FEATURES
    TensorShape([2, 128, 128, 5])
    """

    def __init__(
        self,
        sigma_ref: float = SIGMA_REF,
        ks_pad: int = KS_PAD_PX,
        empty_sigma: float = constants.EMPTY_PIXEL_SIGMA,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not (np.isfinite(sigma_ref) and sigma_ref > 0):
            raise ValueError(f"sigma_ref must be a positive number, got {sigma_ref!r}")
        if not (np.isfinite(empty_sigma) and empty_sigma > 0):
            raise ValueError(f"empty_sigma must be a positive number, got {empty_sigma!r}")
        if isinstance(ks_pad, bool) or int(ks_pad) != ks_pad or ks_pad < 0:
            raise ValueError(f"ks_pad must be a non-negative integer, got {ks_pad!r}")
        self.sigma_ref = float(sigma_ref)
        self.ks_pad = int(ks_pad)
        self.empty_sigma = float(empty_sigma)

    def _ks93(self, e1: tf.Tensor, e2: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ny, nx = e1.shape[-2], e1.shape[-1]
        if ny is None or nx is None:
            raise ValueError("LensingFeatures needs a static map size (ny, nx)")
        p = self.ks_pad
        py, px = ny + 2 * p, nx + 2 * p
        c, s, _ = fourier_kernels(py, px)  # the one Fourier grid of lensviz.inversion
        half = px // 2 + 1
        c = tf.constant(c[:, :half], tf.complex64)
        s = tf.constant(s[:, :half], tf.complex64)
        paddings = [[0, 0], [p, p], [p, p]]
        h1 = tf.signal.rfft2d(tf.pad(e1, paddings))
        h2 = tf.signal.rfft2d(tf.pad(e2, paddings))
        size = tf.constant([py, px], tf.int32)
        k_e = tf.signal.irfft2d(c * h1 + s * h2, fft_length=size)
        k_b = tf.signal.irfft2d(c * h2 - s * h1, fft_length=size)
        return k_e[:, p : p + ny, p : p + nx], k_b[:, p : p + ny, p : p + nx]

    def call(self, eps):
        eps = tf.cast(eps, tf.float32)
        de = eps[..., 2]
        filled = tf.cast(de < self.empty_sigma, tf.float32)
        e1 = eps[..., 0] * filled
        e2 = eps[..., 1] * filled
        s2 = self.sigma_ref**2
        weight = filled * s2 / (de * de + s2)
        k_e, k_b = self._ks93(e1, e2)
        return tf.stack([e1, e2, weight, k_e, k_b], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(FEATURES))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"sigma_ref": self.sigma_ref, "ks_pad": self.ks_pad, "empty_sigma": self.empty_sigma}
        )
        return config
