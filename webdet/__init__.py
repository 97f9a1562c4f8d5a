"""webdet: LabelImg annotations to an object detector that runs live in the browser."""

__version__ = "0.1.0"
