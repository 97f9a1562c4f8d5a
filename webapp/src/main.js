// The app: load the model, pick a backend, run the camera/video loop without blocking or queueing,
// and detect on uploaded images, in the browser or on a detection server (`?api=URL`, see remote.js).
// The detector is asked for everything down to the model's min_score and the slider's threshold is applied
// here (results.js), so the page can say what the threshold hides and an uploaded image follows the slider.
// `window.webdet` exposes state for tests, benchmarks and debugging: ttfd_ms (page open → first detection
// result shown), load_ms (page open → model ready, warm-up run included), steady_ms (median ms per frame of
// the camera/video loop, timing.js), download {loaded, total} (weight bytes), below (detections the
// threshold hides).
import * as tf from '@tensorflow/tfjs';
import { chooseBackend, describeBackend } from './backend.js';
import { CameraError, startCamera, stopCamera } from './camera.js';
import { drawDetections, sizeOverlay } from './draw.js';
import { ModelLoadError, fetchModelJson, load } from './detector.js';
import { countingFetch, loadingText, weightBytes } from './loading.js';
import { registerServiceWorker } from './offline.js';
import { detectOnServer, isCurrentServer, useServer } from './remote.js';
import { candidateThreshold, detectionSummary, splitByThreshold } from './results.js';
import { FrameTimes } from './timing.js';
import { $, listDetections, setRunning, setStatus, showError, showModel, showPerf, showStage } from './ui.js';

const state = {
  backend: null, ready: false, frames: 0, skipped: 0, detections: [], tensors: 0, fps: 0, ms: 0,
  error: null, modelUrl: null, kind: null, api: null, apiOnline: null, apiModel: null, remote: null,
  below: 0, ttfd_ms: null, load_ms: null, steady_ms: null, download: { loaded: 0, total: null },
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
let loopName = 'Camera';
let frameTimes = new FrameTimes();
let loadFraction = 0;
let shownImage = null; // the uploaded image on show: {bitmap, all, name, remote}; redrawn when the slider moves

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

/** One inference: every detection down to the model's min_score (one run, whatever the slider says). */
async function detectOn(source) {
  const start = performance.now();
  const all = await detector.detect(source, { scoreThreshold: candidateThreshold(detector.metadata, threshold) });
  state.ms = performance.now() - start;
  state.tensors = tf.memory().numTensors;
  return all;
}

/** The detections at the slider's threshold, and how many it hides, into the state. */
function atThreshold(all, remote = false) {
  const { shown, below } = remote ? { shown: all, below: 0 } : splitByThreshold(all, threshold);
  state.detections = shown;
  state.below = below;
  return { shown, below };
}

/** Called as each result is shown; the first one sets the time to first detection. */
function resultShown() {
  if (state.ttfd_ms == null) state.ttfd_ms = performance.now();
  state.frames += 1;
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
      const all = await detectOn(video);
      frameTimes.add(state.ms);
      state.steady_ms = frameTimes.steady;
      const { shown, below } = atThreshold(all);
      drawDetections($('overlay'), shown);
      listDetections(shown);
      resultShown();
      const now = performance.now();
      state.fps = lastFrameAt ? 0.8 * state.fps + 0.2 * (1000 / (now - lastFrameAt)) : 0;
      lastFrameAt = now;
      showPerf(state);
      setStatus(`${loopName}: ${detectionSummary(shown.length, below, threshold)}`);
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

function startLoop(video, name) {
  dropImage();
  running = true;
  loopName = name;
  lastFrameAt = 0;
  frameTimes = new FrameTimes(); // a new source: its first frames are warm-up again
  state.steady_ms = null;
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
    startLoop(video, 'Camera');
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

function dropImage() {
  shownImage?.bitmap.close();
  shownImage = null;
}

/** The uploaded image with its detections at the slider's threshold (no new inference). */
function showImage() {
  const { bitmap, all, name, remote } = shownImage;
  const { shown, below } = atThreshold(all, remote);
  drawDetections($('overlay'), shown, bitmap);
  listDetections(shown);
  setStatus(`${name}: ${detectionSummary(shown.length, below, threshold)}${remote ? ' from the detection server' : ''}`);
}

async function onImage(file) {
  if (!file) return;
  stopLoop();
  dropImage();
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
  const remote = Boolean(state.api);
  setStatus(remote ? `${file.name}: sent to the detection server…` : `${file.name}: detecting…`);
  try {
    // The server applies its threshold itself; the browser's detector answers down to min_score.
    const found = await detectImage(bitmap);
    if (request !== imageRequest) {
      bitmap.close();
      return;
    }
    dropImage();
    shownImage = { bitmap, all: found, name: file.name, remote };
    showImage();
    resultShown();
    $('download').disabled = false;
    if (!remote) showPerf(state, false);
  } catch (err) {
    bitmap.close();
    if (request !== imageRequest) return;
    state.detections = [];
    state.below = 0;
    fail(`Detection failed: ${err.message}`);
    setStatus(`${file.name}: no detections`);
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
  startLoop(video, file.name);
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
  const chosen = await chooseBackend(requested);
  state.backend = chosen.backend;
  state.threads = chosen.threads;
  $('backend-used').textContent = describeBackend(chosen);
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

/** The weights download in bytes, then the warm-up run that load() does before it resolves. */
function showLoading() {
  setStatus(loadingText({ ...state.download, fraction: loadFraction }));
}

/** load()'s JSON fetch; model.json's weightsManifest gives the download's total bytes. */
async function fetchJsonNotingSize(url) {
  const json = await fetchModelJson(url);
  if (new URL(url).pathname.endsWith('/model.json')) state.download.total = weightBytes(json);
  return json;
}

/** tf.loadGraphModel with the weight shards' bytes counted as they arrive. */
function loadGraphModelCounting(url, options) {
  const fetchFunc = countingFetch((bytes) => {
    state.download.loaded += bytes;
    showLoading();
  });
  return tf.loadGraphModel(url, { ...options, fetchFunc });
}

async function init() {
  const params = new URLSearchParams(window.location.search);
  $('backend').value = params.get('backend') || 'auto';
  switchServer(params.get('api'));
  try {
    await useBackend($('backend').value);
    state.modelUrl = modelBaseUrl();
    detector = await load(state.modelUrl, {
      onProgress: (fraction) => {
        loadFraction = fraction;
        showLoading();
      },
      fetchJson: fetchJsonNotingSize,
      loadGraphModel: loadGraphModelCounting,
    });
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
  showModel(detector.metadata);
  modelLabels = (detector.metadata.labels ?? []).map((l) => l.name).join(', ') || detector.kind;
  setStatus(readyText());
  state.load_ms = performance.now();
  state.ready = true;
}

$('start').addEventListener('click', onStartCamera);
$('stop').addEventListener('click', stopLoop);
$('image-file').addEventListener('change', (e) => {
  onImage(e.target.files[0]);
  e.target.value = ''; // choosing the same photo again (other server) detects again
});
$('video-file').addEventListener('change', (e) => onVideoFile(e.target.files[0]));
$('download').addEventListener('click', onDownload);
$('threshold').addEventListener('input', (e) => {
  threshold = Number(e.target.value);
  thresholdKnown = true;
  $('threshold-value').textContent = threshold.toFixed(2);
  if (shownImage && !running) showImage();
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
registerServiceWorker(); // before init(): the backend waits to know whether the page reloads for isolation
init();
