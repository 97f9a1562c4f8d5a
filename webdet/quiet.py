"""Import TensorFlow without its C++ start-up chatter (CUDA probes on machines without a GPU).

Python exceptions still propagate; only what the native libraries print while loading is dropped.
"""
import contextlib
import os
import sys
import warnings


@contextlib.contextmanager
def native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")
    with native_stderr_silenced():
        import tensorflow as tf
        tf.get_logger().setLevel("ERROR")
        import official.vision  # noqa: F401  (registers Model Garden's configs while still quiet)
    return tf
