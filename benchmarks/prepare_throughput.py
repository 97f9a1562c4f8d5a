"""`prepare` throughput on the shared kangaroo set: images per second and where the time goes.

Runs the library call (no process start-up, no TensorFlow import in the timing) several times with
one worker and with every core, and prints the median wall time, images/s and the split into
parse (XML + pairing), decode/validate (every image decoded in full), encode (reading or re-encoding
what is stored) and write (serialising the TFRecords). Skips cleanly without ../shared.

    python benchmarks/prepare_throughput.py
    python benchmarks/prepare_throughput.py --repeats 5 --workers 1 2
    python benchmarks/prepare_throughput.py --source path/to/labelimg_folder
"""
import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KANGAROO = REPO.parent / "shared" / "datasets" / "kangaroo"
PHASES = ("parse", "decode_validate", "encode", "write")


def time_prepare(source: Path, workers: int, repeats: int) -> list[dict]:
    """The report's timings of `repeats` runs, each into a fresh folder."""
    from webdet.data_prep.prepare import prepare

    runs = []
    with tempfile.TemporaryDirectory() as work:
        for index in range(repeats):
            report = prepare([source], Path(work) / str(index), workers=workers)
            runs.append({"images": report["images"]["written"], **report["seconds"]})
    return runs


def median_row(runs: list[dict]) -> dict:
    return {key: statistics.median(run.get(key, 0.0) for run in runs) for key in ("total", *PHASES)}


def print_table(source: Path, results: dict[int, list[dict]]) -> None:
    images = next(iter(results.values()))[0]["images"]
    print(f"prepare on {source} ({images} images), median of {len(next(iter(results.values())))} runs, "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")
    print(f"{'workers':>7} {'total s':>8} {'img/s':>7} " + " ".join(f"{p + ' s':>17}" for p in PHASES))
    for workers, runs in results.items():
        row = median_row(runs)
        print(f"{workers:>7} {row['total']:>8.3f} {images / row['total']:>7.0f} "
              + " ".join(f"{row[p]:>17.3f}" for p in PHASES))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=KANGAROO, help="LabelImg folder (default: shared kangaroo set)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"skipped: {args.source} is not present")
        return 0
    from webdet.quiet import import_tensorflow

    import_tensorflow()
    time_prepare(args.source, 1, 1)  # warm the file cache and the imports
    results = {workers: time_prepare(args.source, workers, args.repeats) for workers in dict.fromkeys(args.workers)}
    print_table(args.source, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
