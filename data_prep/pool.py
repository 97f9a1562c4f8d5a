"""Decoding, validating and re-encoding images across cores, in input order, with bounded memory.

The work functions live in this TensorFlow-free module so worker processes start light whatever the
multiprocessing start method is.
"""
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from webdet.data_prep.boxes import FittedBoxes, fit_boxes
from webdet.data_prep.images import ImageInfo, ImageProblem, inspect_image, stored_jpeg

MIN_PARALLEL_ITEMS = 16   # below this, starting processes costs more than it saves
CHUNK = 8                 # items per task sent to a worker
IN_FLIGHT_PER_WORKER = 4  # tasks queued per worker: keeps cores busy without holding every result in memory


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _run_chunk(function, items):
    return [function(item) for item in items]


def ordered_map(function, items: list, workers: int):
    """`map(function, items)` over `workers` processes, yielding results in input order as they are ready."""
    if workers <= 1 or len(items) < MIN_PARALLEL_ITEMS:
        yield from map(function, items)
        return
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = deque()
        for chunk in chunks:
            pending.append(pool.submit(_run_chunk, function, chunk))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


@dataclass
class Checked:
    """The outcome of validating one record: image facts and fitted boxes, or the problem that stops it."""
    record: object                 # scan.ImageRecord
    info: ImageInfo | None = None
    fitted: FittedBoxes | None = None
    problem: ImageProblem | None = None


def check_record(record) -> Checked:
    """Decode and validate one image and fit its boxes to the real pixels (a worker task)."""
    try:
        info = inspect_image(record.image_path, record.annotated_size)
    except ImageProblem as problem:
        return Checked(record, problem=problem)
    return Checked(record, info, fit_boxes(record.boxes, info.width, info.height))


def encode_record(path_and_info) -> bytes:
    """The JPEG bytes to store for one validated image (a worker task)."""
    path, info = path_and_info
    return stored_jpeg(path, info)
