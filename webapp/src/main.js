// The app: load the model, pick a backend, run the camera/video loop without blocking or queueing,
// and detect on uploaded images. `window.webdet` exposes state for tests and debugging.
import * as tf from '@tensorflow/tfjs';
import { chooseBackend } from './backend.js';
import { CameraError, startCamera, stopCamera } from './camera.js';
import { drawDetections, sizeOverlay } from './draw.js';
import { ModelLoadError, loadDetector } from './model.js';
import { $, listDetections, setRunning, setStatus, showError, showPerf, showStage } from './ui.js';

const state = {
  backend: null, ready: false, frames: 0, skipped: 0, detections: [], tensors: 0, fps: 0, ms: 0,
  error: null, modelUrl: null, kind: null,
};
window.webdet = state;

let detector = null;
let running = false;
let busy = false;
let threshold = 0.3;
let lastFrameAt = 0;

function modelBaseUrl() {
  const given = new URLSearchParams(window.location.search).get('model') || 'model/';
  const base = given.endsWith('/') ? given : `${given.replace(/model\.json$/, '').replace(/\/$/, '')}/`;
  return new URL(base, window.location.href).href;
}

function fail(message) {
  state.error = message;
  showError(message);
}

async function detectOn(source, width, height) {
  const start = performance.now();
  const found = await detector.detect(source, width, height, threshold);
  state.ms = performance.now() - start;
  state.detections = found;
  state.tensors = tf.memory().numTensors;
  return found;
}

async function onFrame() {
  if (!running) return;
  const video = $('video');
  if (busy || video.readyState < 2) {
    state.skipped += busy ? 1 : 0; // never queue: a slow device drops frames instead of lagging
  } else {
    busy = true;
    try {
      sizeOverlay($('overlay'), video.videoWidth, video.videoHeight);
      const found = await detectOn(video, video.videoWidth, video.videoHeight);
      drawDetections($('overlay'), found);
      listDetections(found);
      state.frames += 1;
      const now = performance.now();
      state.fps = lastFrameAt ? 0.8 * state.fps + 0.2 * (1000 / (now - lastFrameAt)) : 0;
      lastFrameAt = now;
      showPerf(state);
    } catch (err) {
      fail(`Detection failed: ${err.message}`);
      running = false;
    } finally {
      busy = false;
    }
  }
  if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(onFrame);
  else requestAnimationFrame(onFrame);
}

function startLoop(video) {
  running = true;
  lastFrameAt = 0;
  setRunning(true);
  $('download').disabled = false;
  showStage('video', video.videoWidth, video.videoHeight);
  onFrame();
}

function stopLoop() {
  running = false;
  setRunning(false);
  stopCamera($('video'));
}

async function onStartCamera() {
  showError('');
  try {
    const video = $('video');
    video.removeAttribute('src');
    await startCamera(video, $('camera').value);
    startLoop(video);
  } catch (err) {
    fail(err instanceof CameraError ? err.message : `Camera error: ${err.message}`);
    setRunning(false);
  }
}

async function onImage(file) {
  if (!file) return;
  stopLoop();
  showError('');
  let bitmap;
  try {
    // Phone photos: honour EXIF orientation so boxes land where the person sees the object.
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    fail(`${file.name} is not an image this browser can decode.`);
    return;
  }
  const photo = $('photo');
  const canvas = $('overlay');
  sizeOverlay(canvas, bitmap.width, bitmap.height);
  showStage('photo', bitmap.width, bitmap.height);
  photo.hidden = true;
  const found = await detectOn(bitmap, bitmap.width, bitmap.height);
  drawDetections(canvas, found, bitmap);
  listDetections(found);
  state.frames += 1;
  bitmap.close();
  $('download').disabled = false;
  setStatus(`${file.name}: ${found.length} detection(s)`);
}

async function onVideoFile(file) {
  if (!file) return;
  stopLoop();
  const video = $('video');
  video.srcObject = null;
  video.src = URL.createObjectURL(file);
  video.loop = true;
  try {
    await video.play();
  } catch {
    fail(`${file.name} is not a video this browser can play.`);
    return;
  }
  startLoop(video);
}

function onDownload() {
  const out = document.createElement('canvas');
  const overlay = $('overlay');
  out.width = overlay.width;
  out.height = overlay.height;
  const ctx = out.getContext('2d');
  if (!$('video').hidden) ctx.drawImage($('video'), 0, 0, out.width, out.height);
  ctx.drawImage(overlay, 0, 0);
  const link = document.createElement('a');
  link.download = 'detections.png';
  link.href = out.toDataURL('image/png');
  link.click();
}

async function useBackend(requested) {
  const { backend, tried } = await chooseBackend(requested);
  state.backend = backend;
  $('backend-used').textContent = tried.length ? `using ${backend} (${tried.join(', ')} unavailable)` : `using ${backend}`;
}

async function init() {
  const params = new URLSearchParams(window.location.search);
  $('backend').value = params.get('backend') || 'auto';
  try {
    await useBackend($('backend').value);
    state.modelUrl = modelBaseUrl();
    detector = await loadDetector(state.modelUrl);
  } catch (err) {
    fail(err instanceof ModelLoadError ? `Model not loaded: ${err.message}` : err.message);
    setStatus('No model loaded.');
    return;
  }
  state.kind = detector.kind;
  threshold = detector.metadata.score_threshold ?? threshold;
  $('threshold').value = String(threshold);
  $('threshold-value').textContent = threshold.toFixed(2);
  $('model-name').textContent = detector.metadata.name ?? '';
  const labels = (detector.metadata.labels ?? []).map((l) => l.name).join(', ');
  setStatus(`Model ready (${labels || detector.kind}). Start the camera or upload an image.`);
  state.ready = true;
}

$('start').addEventListener('click', onStartCamera);
$('stop').addEventListener('click', stopLoop);
$('image-file').addEventListener('change', (e) => onImage(e.target.files[0]));
$('video-file').addEventListener('change', (e) => onVideoFile(e.target.files[0]));
$('download').addEventListener('click', onDownload);
$('threshold').addEventListener('input', (e) => {
  threshold = Number(e.target.value);
  $('threshold-value').textContent = threshold.toFixed(2);
});
$('backend').addEventListener('change', async (e) => {
  try {
    await useBackend(e.target.value);
  } catch (err) {
    fail(err.message);
  }
});
init();
