"""The devices TensorFlow runs the UNet on, described for people (app sidebar, run summaries).

The choices that depend on the devices, the distribution strategy and the precision
policy of a training run, belong to that run: :func:`lensviz.nn.distribution.distribution_strategy`
and :func:`lensviz.nn.distribution.configure_precision`.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["describe_device"]


def describe_device() -> str:
    """The device the UNet runs on, e.g. ``"GPU: NVIDIA H200"`` or ``"CPU (no GPU found)"``.

    With several GPUs the count follows, ``"GPU: NVIDIA H200 (×2)"``. Listing the devices
    initialises TensorFlow's runtime on the first call.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU (no GPU found)"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    except (ValueError, RuntimeError):
        name = gpus[0].name
    return f"GPU: {name}" + (f" (×{len(gpus)})" if len(gpus) > 1 else "")
