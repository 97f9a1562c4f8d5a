"""Where Python inference time goes, measured side by side in one process on one test image of a run:
the bare network, the web graph (network + box decoding), the checkpoint detector (+ preprocessing and
NMS, with merge-NMS off and on), the exported SavedModel's serving signature, and `ExportDetector.detect` (what `/api/detect`,
`predict` and `evaluate --saved-model` call). Median ms at batch 1, the first calls excluded.

    python benchmarks/inference_latency.py --run RUN --export EXPORT [--frames 30]
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def median_ms(fn, frames: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def network_function(model, size: int):
    """The bare network (backbone + FPN + head) as one traced function of a normalised [1, S, S, 3] batch."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32)])
    def network(x):
        return model.head(model.decoder(model.backbone(x, training=False), training=False), training=False)

    return network


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--export", required=True)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()

    import tensorflow as tf

    from webdet.export.detector import load_detector
    from webdet.export.graphs import web_function
    from webdet.export.parity import read_test_split
    from webdet.training.config import read_run_config
    from webdet.training.detector import ModelDetector, load_checkpoint_detector
    from webdet.training.model import preprocess

    config = read_run_config(args.run)
    size = int(config["model"]["input_size"])
    image = read_test_split(config["data"]["dir"])[0]["image"]
    checkpoint = load_checkpoint_detector(args.run, "best")
    model = checkpoint.model
    inputs = preprocess(tf.constant(image), size)[0][tf.newaxis]

    network = network_function(model, size)
    web = web_function(model, config)
    exported = load_detector(args.export)
    frame = tf.constant(image[tf.newaxis])
    serve = exported._signature
    plain, merged = ({**config, "eval": {**config["eval"], "merge_boxes": merge}} for merge in (False, True))
    plain_fn, merged_fn = ModelDetector(model, plain).detect_fn, ModelDetector(model, merged).detect_fn
    rows = {
        "network (backbone + FPN + head)": median_ms(lambda: network(inputs), args.frames),
        "web graph (network + box decoding)": median_ms(lambda: web(inputs), args.frames),
        "checkpoint detect_fn (+ preprocessing, NMS)": median_ms(lambda: plain_fn(frame[0]), args.frames),
        "checkpoint detect_fn (+ preprocessing, merge-NMS)": median_ms(lambda: merged_fn(frame[0]), args.frames),
        "SavedModel serving signature": median_ms(lambda: serve(input_tensor=frame), args.frames),
        "webdet predict / API path (ExportDetector.detect)": median_ms(lambda: exported.detect(image), args.frames),
    }
    base = rows["network (backbone + FPN + head)"]
    print(f"{config['model']['input_size']}px model, image {image.shape[1]}x{image.shape[0]}, "
          f"{args.frames} frames, {os.cpu_count()} CPUs; the export's merge-NMS: "
          f"{'on' if exported_merges(args.export) else 'off'}")
    for name, ms in rows.items():
        print(f"  {name:50s} {ms:8.1f} ms  {ms / base:5.2f}x the network")
    return 0


def exported_merges(export_dir) -> bool:
    import json

    metadata = Path(export_dir) / "web_model" / "metadata.json"
    return metadata.is_file() and bool(json.loads(metadata.read_text()).get("merge_boxes"))


if __name__ == "__main__":
    sys.exit(main())
