"""Keep TensorFlow's native start-up chatter off the terminal (no TensorFlow import here).

TensorFlow's C++ side writes oneDNN notices, "could not find cuda drivers" and, on a CPU
machine, "failed call to cuInit" straight to file descriptor 2, some of it before its
logger reads ``TF_CPP_MIN_LOG_LEVEL``. :func:`captured` points descriptor 2 at a
temporary file for the duration of a block (the import of TensorFlow and its device
discovery) and replays what was written only if the block raises. ``LENSVIZ_TF_LOGS=1``
turns all of this off, e.g. to see why a GPU is not used.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["SHOW_TF_LOGS", "captured"]

#: True when the user asked for TensorFlow's logs (``LENSVIZ_TF_LOGS=1``).
SHOW_TF_LOGS = os.environ.get("LENSVIZ_TF_LOGS", "") not in ("", "0")
if not SHOW_TF_LOGS:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def captured() -> Iterator[None]:
    """Point file descriptor 2 at a temporary file; replay it if the block raises."""
    if SHOW_TF_LOGS:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreter): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
