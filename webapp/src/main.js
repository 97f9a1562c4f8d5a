// The app: load the model, pick a backend, run the camera/video loop without blocking or queueing,
// and detect on uploaded images, in the browser or on a detection server (`?api=URL`, see remote.js).
// `window.webdet` exposes state for tests and debugging.
import * as tf from '@tensorflow/tfjs';
import { chooseBackend } from './backend.js';
import { CameraError, startCamera, stopCamera } from './camera.js';
import { drawDetections, sizeOverlay } from './draw.js';
import { ModelLoadError, load } from './detector.js';
import { detectOnServer, isCurrentServer, useServer } from './remote.js';
import { $, listDetections, setRunning, setStatus, showError, showPerf, showStage } from './ui.js';

const state = {
  backend: null, ready: false, frames: 0, skipped: 0, detections: [], tensors: 0, fps: 0, ms: 0,
  error: null, modelUrl: null, kind: null, api: null, apiOnline: null, apiModel: null, remote: null,
};
window.webdet = state;

let detector = null;
let running = false;
let busy = false;
let threshold = 0.3;
let thresholdKnown = false; // set by the model's metadata or the slider; until then the server uses its own
let lastFrameAt = 0;
let imageRequest = 0;
let modelLabels = '';

function modelBaseUrl() {
  const given = new URLSearchParams(window.location.search).get('model') || 'model/';
  const base = given.endsWith('/') ? given : `${given.replace(/model\.json$/, '').replace(/\/$/, '')}/`;
  return new URL(base, window.location.href).href;
}

function fail(message) {
  state.error = message;
  showError(message);
}

function clearError() {
  state.error = null;
  showError('');
}

async function detectOn(source) {
  const start = performance.now();
  const found = await detector.detect(source, { scoreThreshold: threshold });
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
      const found = await detectOn(video);
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

async function detectImage(bitmap) {
  if (state.api) {
    const start = performance.now();
    const found = await detectOnServer(state, bitmap, thresholdKnown ? threshold : null);
    state.ms = performance.now() - start;
    return found;
  }
  if (!detector) throw new Error('no model is loaded in this browser; connect to a detection server instead');
  return detectOn(bitmap);
}

async function onImage(file) {
  if (!file) return;
  stopLoop();
  clearError();
  const request = ++imageRequest; // a slow answer for an older upload must not overwrite a newer one
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
  drawDetections(canvas, [], bitmap);
  listDetections([]);
  setStatus(state.api ? `${file.name}: sent to the detection server…` : `${file.name}: detecting…`);
  try {
    const found = await detectImage(bitmap);
    if (request !== imageRequest) return;
    state.detections = found;
    drawDetections(canvas, found, bitmap);
    listDetections(found);
    state.frames += 1;
    $('download').disabled = false;
    setStatus(`${file.name}: ${found.length} detection(s)${state.api ? ' from the detection server' : ''}`);
  } catch (err) {
    if (request !== imageRequest) return;
    state.detections = [];
    fail(`Detection failed: ${err.message}`);
    setStatus(`${file.name}: no detections`);
  } finally {
    bitmap.close();
  }
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

function connectLabel() {
  const value = $('api-url').value.trim();
  $('api-connect').textContent = state.api && (!value || isCurrentServer(state, value)) ? 'Disconnect' : 'Connect';
}

function switchServer(given) {
  try {
    useServer(state, given);
  } catch (err) {
    fail(err.message);
    return;
  }
  const url = new URL(window.location.href);
  if (state.api) url.searchParams.set('api', state.api);
  else url.searchParams.delete('api');
  window.history.replaceState(null, '', url);
  if (!state.api) $('api-url').value = '';
  connectLabel();
  if (state.ready) setStatus(readyText());
}

function onConnect() {
  clearError();
  const value = $('api-url').value.trim();
  switchServer(!value || isCurrentServer(state, value) ? null : value);
}

function readyText() {
  const uploads = state.api ? ' Uploaded images go to the detection server; the camera runs in this browser.' : '';
  return `Model ready (${modelLabels}). Start the camera or upload an image.${uploads}`;
}

/** The weights download, then the warm-up run that load() does before it resolves. */
function showLoading(fraction) {
  setStatus(fraction < 1 ? `Loading the model… ${Math.round(fraction * 100)}%` : 'Preparing the model…');
}

async function init() {
  const params = new URLSearchParams(window.location.search);
  $('backend').value = params.get('backend') || 'auto';
  switchServer(params.get('api'));
  try {
    await useBackend($('backend').value);
    state.modelUrl = modelBaseUrl();
    detector = await load(state.modelUrl, { onProgress: showLoading });
  } catch (err) {
    fail(err instanceof ModelLoadError ? `Model not loaded: ${err.message}` : err.message);
    setStatus(state.api ? 'No model loaded in this browser; uploaded images still go to the detection server.'
      : 'No model loaded.');
    return;
  }
  state.kind = detector.kind;
  threshold = detector.metadata.score_threshold ?? threshold;
  thresholdKnown = true;
  $('threshold').value = String(threshold);
  $('threshold-value').textContent = threshold.toFixed(2);
  $('model-name').textContent = detector.metadata.name ?? '';
  modelLabels = (detector.metadata.labels ?? []).map((l) => l.name).join(', ') || detector.kind;
  setStatus(readyText());
  state.ready = true;
}

$('start').addEventListener('click', onStartCamera);
$('stop').addEventListener('click', stopLoop);
$('image-file').addEventListener('change', (e) => {
  onImage(e.target.files[0]);
  e.target.value = ''; // choosing the same photo again (new threshold, other server) detects again
});
$('video-file').addEventListener('change', (e) => onVideoFile(e.target.files[0]));
$('download').addEventListener('click', onDownload);
$('threshold').addEventListener('input', (e) => {
  threshold = Number(e.target.value);
  thresholdKnown = true;
  $('threshold-value').textContent = threshold.toFixed(2);
});
$('api-connect').addEventListener('click', onConnect);
$('api-url').addEventListener('input', connectLabel);
$('api-url').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') onConnect();
});
$('backend').addEventListener('change', async (e) => {
  try {
    await useBackend(e.target.value);
  } catch (err) {
    fail(err.message);
  }
});
init();
