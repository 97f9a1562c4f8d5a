// Runs any TF.js graph model once with model.execute() (never executeAsync) and prints its raw outputs.
// The export's tests use it to check converted graphs on each backend against TensorFlow's own numbers.
//   node tools/execute_model.mjs JOB.json  → prints {backend, outputs: {name: {shape, values}}}
// JOB: {model_dir, backend: "wasm"|"cpu", input: {path (float32 little-endian), shape}, outputs: [names]}
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { fileHandler, wasmDir } from './model_files.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  setWasmPaths(wasmDir(here));
  if (!(await tf.setBackend(job.backend || 'wasm'))) throw new Error(`backend ${job.backend} is not available`);
  await tf.ready();
  const model = await tf.loadGraphModel(fileHandler(job.model_dir));
  const bytes = fs.readFileSync(job.input.path);
  const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const input = tf.tensor(values, job.input.shape, 'float32');
  let outputs = model.execute(input, job.outputs);
  if (!Array.isArray(outputs)) outputs = [outputs];
  const result = {};
  for (let i = 0; i < job.outputs.length; i += 1) {
    result[job.outputs[i]] = { shape: outputs[i].shape, values: Array.from(await outputs[i].data()) };
  }
  tf.dispose([input, ...outputs]);
  process.stdout.write(JSON.stringify({ backend: tf.getBackend(), outputs: result }));
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
