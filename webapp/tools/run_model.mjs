// Runs a webdet web model in Node with the real TF.js runtime and the app's own pre/post-processing.
// Used by `webdet export` (parity check) and the benchmarks.
//   node tools/run_model.mjs JOB.json  → prints JSON results on stdout
// JOB: {model_dir, backend: "wasm"|"cpu", images: [{path (raw RGB bytes), width, height}], repeats}
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { fromGraphModel } from '../src/detector.js';
import { fileHandler, wasmDir } from './model_files.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  setWasmPaths(wasmDir(here));
  if (!(await tf.setBackend(job.backend || 'wasm'))) throw new Error(`backend ${job.backend} is not available`);
  await tf.ready();
  const metadata = JSON.parse(fs.readFileSync(path.join(job.model_dir, 'metadata.json'), 'utf8'));
  // The app's own detector module (warm-up, pre/post-processing, tensor hygiene), on tensors instead of pixels.
  const detector = await fromGraphModel(await tf.loadGraphModel(fileHandler(job.model_dir)), metadata);
  const results = [];
  for (const image of job.images) {
    const pixels = new Uint8Array(fs.readFileSync(image.path));
    const times = [];
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
    }
    results.push({ path: image.path, detections, ms: times });
  }
  process.stdout.write(JSON.stringify({ backend: tf.getBackend(), tensors: tf.memory().numTensors, results }));
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
