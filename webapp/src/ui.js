// DOM wiring: the model's name and legend, status, errors, the detection list and the controls' state.
import { colourFor } from './colours.js';

export const $ = (id) => document.getElementById(id);

/** The status line; unchanged text is not written again, so a screen reader is not told it every frame. */
export function setStatus(text) {
  const status = $('status');
  if (status.textContent !== text) status.textContent = text;
}

export function showError(text) {
  const box = $('error');
  box.textContent = text;
  box.hidden = !text;
}

export function setRunning(running) {
  $('start').disabled = running;
  $('stop').disabled = !running;
}

/**
 * The perf line. In the camera/video loop (`live`): FPS and ms/frame, the steady-state median once there is
 * one; for one image its inference time. Then the backend, the tensor count and, once known, the time from
 * opening the page to the first detection result.
 */
export function perfText({ fps = 0, ms = 0, steady_ms: steady = null, backend, tensors, ttfd_ms: ttfd = null }, live) {
  const parts = live ? [`${fps.toFixed(1)} FPS`, steady == null ? `${ms.toFixed(0)} ms/frame`
    : `${steady.toFixed(0)} ms/frame steady`] : [`${ms.toFixed(0)} ms`];
  parts.push(backend ?? 'no backend', `${tensors} tensors`);
  if (ttfd != null) parts.push(`first detection ${(ttfd / 1000).toFixed(1)} s after opening`);
  return parts.join(' · ');
}

export function showPerf(state, live = true) {
  $('perf').textContent = perfText(state, live);
}

/** The page title and header: the model's name, and a legend of its labels with their box colours. */
export function showModel({ name, labels = [] }) {
  $('model-name').textContent = name || 'webdet';
  $('app-name').hidden = !name;
  document.title = name ? `${name} · webdet` : 'webdet · live object detection';
  const legend = $('legend');
  legend.replaceChildren(...labels.map((label) => {
    const item = document.createElement('li');
    const colour = colourFor(label.id);
    item.dataset.labelId = String(label.id);
    item.dataset.colour = colour;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.backgroundColor = colour;
    swatch.setAttribute('aria-hidden', 'true');
    item.append(swatch, label.name);
    return item;
  }));
  legend.hidden = !labels.length;
}

export function listDetections(detections) {
  const list = $('detections');
  list.replaceChildren(...detections.map((d) => {
    const item = document.createElement('li');
    item.dataset.labelId = String(d.label_id);
    item.style.setProperty('--colour', colourFor(d.label_id));
    item.textContent = `${d.label} ${(d.score * 100).toFixed(0)}% at (${d.box.map((v) => Math.round(v)).join(', ')})`;
    return item;
  }));
}

export function showStage(kind, width, height) {
  $('video').hidden = kind !== 'video';
  $('photo').hidden = kind !== 'photo';
  if (width && height) $('stage').style.aspectRatio = `${width} / ${height}`;
}

/** The detection-server indicator: {state: off|connecting|online|offline, url, model, message}. */
export function showServerStatus({ state, url, model, message }) {
  const indicator = $('api-status');
  indicator.dataset.state = state;
  const texts = {
    off: 'uploads: detected in this browser',
    connecting: 'server: connecting…',
    online: `server: online${model ? ` (${model})` : ''}`,
    offline: `server: offline${message ? ` (${message})` : ''}`,
  };
  indicator.textContent = texts[state];
  indicator.title = url ?? '';
  if (url && document.activeElement !== $('api-url')) $('api-url').value = url;
}
