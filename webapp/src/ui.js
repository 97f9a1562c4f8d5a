// DOM wiring: status, errors, the detection list and the controls' state.

export const $ = (id) => document.getElementById(id);

export function setStatus(text) {
  $('status').textContent = text;
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

export function showPerf({ fps, ms, backend, tensors }) {
  $('perf').textContent = `${fps.toFixed(1)} FPS · ${ms.toFixed(0)} ms/frame · ${backend} · ${tensors} tensors`;
}

export function listDetections(detections) {
  const list = $('detections');
  list.replaceChildren(...detections.map((d) => {
    const item = document.createElement('li');
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
