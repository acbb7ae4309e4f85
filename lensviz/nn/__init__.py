"""lensviz.nn: everything that needs TensorFlow and Keras (the UNet, losses, training).

TensorFlow is imported once, here, with its native start-up chatter kept off the
terminal (:mod:`lensviz._native_logs`; ``LENSVIZ_TF_LOGS=1`` shows it).
"""

from lensviz import _native_logs

with _native_logs.captured():
    import tensorflow as tf

    tf.config.list_physical_devices()  # device discovery logs here, inside the capture
