// Choose the TF.js backend: auto tries webgpu → webgl → wasm → cpu and keeps the first that starts.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';

const ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'];

// The wasm binaries are shipped beside the bundle, never fetched from a CDN.
setWasmPaths(new URL('./', import.meta.url).href);

async function tryBackend(name) {
  if (name === 'webgpu' && !('gpu' in navigator)) return false;
  try {
    return (await tf.setBackend(name)) && (await tf.ready(), tf.getBackend() === name);
  } catch {
    return false;
  }
}

/** Returns {backend, tried}: the backend in use and the ones that failed before it. */
export async function chooseBackend(requested = 'auto') {
  const candidates = requested === 'auto' ? ORDER : [requested, ...ORDER.filter((b) => b !== requested)];
  const tried = [];
  for (const name of candidates) {
    if (await tryBackend(name)) return { backend: name, tried };
    tried.push(name);
  }
  throw new Error('No TensorFlow.js backend could start in this browser.');
}
