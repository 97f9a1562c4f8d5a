// Runs a web model in Node with the real TF.js runtime through the app's own loader (detector.js load()):
// a webdet export (model.json + metadata.json) or a TF2 Object Detection API export (no metadata.json, or one
// with labels only). Used by `webdet export` (parity check), the benchmarks and the OD API loader test.
//   node tools/run_model.mjs JOB.json  → prints JSON results on stdout
// JOB: {model_dir, backend: "wasm"|"cpu", images: [{path (raw RGB bytes), width, height}], repeats,
//       score_threshold?, check_execute?}
// Out: {backend, kind ("webdet"|"od_api"), tensors, execute_error?, results: [{path, detections, ms, tensors}]}
// where each result's tensors is tf.memory().numTensors after each repeat (flat when nothing leaks), and
// execute_error (with check_execute) is what model.execute() says to a zero input, null when it runs the graph:
// OD API exports have dynamic ops and need executeAsync.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { ModelLoadError, load } from '../src/detector.js';
import { fileHandler, wasmDir } from './model_files.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** load()'s stand-ins for the network: the JSON files and the weights read from the model folder. */
function fromDisk(loaded) {
  return {
    async fetchJson(url) {
      const file = fileURLToPath(url);
      if (!fs.existsSync(file)) throw new ModelLoadError(`${file}: missing`);
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    },
    async loadGraphModel(url) {
      loaded.model = await tf.loadGraphModel(fileHandler(path.dirname(fileURLToPath(url))));
      return loaded.model;
    },
  };
}

/** model.execute()'s error on a zero input of the graph's own spec (free dimensions 32), or null if it runs. */
function executeError(model) {
  const { shape, dtype } = model.inputs[0];
  const input = tf.zeros(shape.map((d) => (d > 0 ? d : 32)), dtype);
  try {
    tf.dispose(model.execute(input));
    return null;
  } catch (err) {
    return err.message;
  } finally {
    input.dispose();
  }
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  setWasmPaths(wasmDir(here));
  if (!(await tf.setBackend(job.backend || 'wasm'))) throw new Error(`backend ${job.backend} is not available`);
  await tf.ready();
  // The app's own loader and detector (metadata or OD API, warm-up, pre/post-processing, tensor hygiene),
  // on tensors instead of pixels.
  const loaded = {};
  const detector = await load(pathToFileURL(path.resolve(job.model_dir) + path.sep).href, fromDisk(loaded));
  const output = { backend: tf.getBackend(), kind: detector.kind };
  if (job.check_execute) output.execute_error = executeError(loaded.model);
  const results = [];
  for (const image of job.images) {
    const pixels = new Uint8Array(fs.readFileSync(image.path));
    const times = [];
    const tensors = [];
    let detections;
    for (let r = 0; r < (job.repeats || 1); r += 1) {
      const start = performance.now();
      const frame = tf.tensor3d(pixels, [image.height, image.width, 3], 'int32');
      try {
        detections = await detector.detect(frame, { scoreThreshold: job.score_threshold ?? undefined });
      } finally {
        frame.dispose();
      }
      times.push(performance.now() - start);
      tensors.push(tf.memory().numTensors);
    }
    results.push({ path: image.path, detections, ms: times, tensors });
  }
  process.stdout.write(JSON.stringify({ ...output, tensors: tf.memory().numTensors, results }));
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
