// Choose the TF.js backend: auto tries webgpu → webgl → wasm → cpu and keeps the first that starts. Auto passes
// over webgl when its renderer is software (SwiftShader, llvmpipe: a machine without a usable GPU), where it
// is about ten times slower than wasm; `?backend=webgl` still uses it.
// The wasm backend runs on several threads where the page is cross-origin isolated (COOP/COEP from the
// server, or from the service worker on a plain static host): one per logical core by default, or
// `?threads=N`; 1 where it is not isolated.
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import { isolationSettled } from './offline.js';

const ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'];
const SOFTWARE_GL = /swiftshader|llvmpipe|softpipe|software/i;
const MAX_WASM_THREADS = 8; // the workers tfjs-backend-wasm starts; its thread pool never grows past them

// The wasm binaries are shipped beside the bundle, never fetched from a CDN.
setWasmPaths(new URL('./', import.meta.url).href);

let wasmStarted = false;

/**
 * The wasm thread count this page asks for: `?threads=N` (a positive integer) where given, else one per
 * logical core; 1 where the page is not cross-origin isolated (no SharedArrayBuffer, so no threads).
 */
export function requestedThreads(search = globalThis.location?.search ?? '', env = globalThis) {
  const given = new URLSearchParams(search).get('threads');
  if (given !== null && !/^[1-9][0-9]*$/.test(given.trim())) {
    throw new Error(`?threads=${given} is not a positive whole number of wasm threads: use e.g. ?threads=2, `
      + 'or leave it out for one thread per core.');
  }
  if (!env.crossOriginIsolated) return 1;
  return given !== null ? Number(given.trim()) : Math.max(1, env.navigator?.hardwareConcurrency || 1);
}

/**
 * Starts the wasm backend with `threads` threads. tfjs-backend-wasm caps its pool at
 * navigator.hardwareConcurrency / 2 (it assumes two hyperthreads per core), read once while the module
 * initialises; so, only for that moment, the page reports twice the count it wants, then the real value again.
 */
async function startWasm(threads) {
  setThreadsCount(threads);
  const own = Object.getOwnPropertyDescriptor(navigator, 'hardwareConcurrency');
  let patched = false;
  if (threads > 1 && (!own || own.configurable)) {
    try {
      Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => 2 * threads });
      patched = true;
    } catch {
      // a browser that refuses the override keeps its own cap
    }
  }
  try {
    return await tf.setBackend('wasm');
  } finally {
    if (patched) {
      if (own) Object.defineProperty(navigator, 'hardwareConcurrency', own);
      else delete navigator.hardwareConcurrency;
    }
  }
}

async function tryBackend(name, threads) {
  if (name === 'webgpu' && !('gpu' in navigator)) return false;
  try {
    let started;
    if (name === 'wasm' && !wasmStarted) {
      started = await startWasm(threads); // the count is fixed at the first start; later switches keep it
      wasmStarted = started;
    } else {
      started = await tf.setBackend(name);
    }
    return started && (await tf.ready(), tf.getBackend() === name);
  } catch {
    return false;
  }
}

/** The WebGL renderer's name as the browser reports it, e.g. "ANGLE (…SwiftShader driver)"; '' when unknown. */
export function webglRenderer(doc = globalThis.document) {
  try {
    const gl = doc.createElement('canvas').getContext('webgl2') ?? doc.createElement('canvas').getContext('webgl');
    if (!gl) return '';
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return name;
  } catch {
    return '';
  }
}

/** True for a renderer name that says WebGL runs on the CPU. */
export const isSoftwareRenderer = (name) => SOFTWARE_GL.test(name);

/** The wasm pool's size as the backend reports it (null when the wasm backend has not started). */
function wasmThreads() {
  try {
    return getThreadsCount();
  } catch {
    return null;
  }
}

/**
 * Returns {backend, tried, skipped, threads}: the backend in use, the ones that failed before it, those auto
 * passed over (webgl on a software renderer), and for wasm the
 * threads its pool runs (tf.wasm.getThreadsCount()); null for the other backends. Waits first until the
 * service worker has decided whether the page reloads to become cross-origin isolated.
 */
export async function chooseBackend(requested = 'auto') {
  await isolationSettled(); // a page about to reload for isolation shows nothing, not even a bad ?threads=
  const threads = requestedThreads();
  const candidates = requested === 'auto' ? ORDER : [requested, ...ORDER.filter((b) => b !== requested)];
  const tried = [];
  const skipped = [];
  for (const name of candidates) {
    if (requested === 'auto' && name === 'webgl' && isSoftwareRenderer(webglRenderer())) {
      skipped.push('webgl');
      continue;
    }
    if (await tryBackend(name, Math.min(threads, MAX_WASM_THREADS))) {
      return { backend: name, tried, skipped, threads: name === 'wasm' ? wasmThreads() : null };
    }
    tried.push(name);
  }
  throw new Error('No TensorFlow.js backend could start in this browser.');
}

/** "using wasm · 2 threads (webgpu unavailable; webgl skipped: software renderer)" for the page. */
export function describeBackend({ backend, tried, skipped = [], threads }) {
  const count = threads == null ? '' : ` · ${threads} thread${threads === 1 ? '' : 's'}`;
  const notes = [tried.length ? `${tried.join(', ')} unavailable` : '',
    skipped.length ? `${skipped.join(', ')} skipped: software renderer` : ''].filter(Boolean);
  return `using ${backend}${count}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}
