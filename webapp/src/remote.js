// Server mode: uploaded images go to a detection server (`webdet serve`) instead of the in-browser
// model, and the page shows whether that server is online. The camera and video loop stay in the browser.
import { apiBaseUrl, detectRemote, watchStatus } from './api.js';
import { showServerStatus } from './ui.js';
import { scaleDetections, uprightJpeg } from './upload.js';

const POLL_MS = 3000;
let stopWatching = null;

/**
 * Switch uploads to the server at `given` (any http(s) URL), or back to the browser when `given` is empty.
 * Returns the server's base URL or null. Throws ApiError for an address that is not http(s).
 */
export function useServer(state, given) {
  const base = given ? apiBaseUrl(given) : null;
  if (stopWatching) stopWatching();
  stopWatching = null;
  Object.assign(state, { api: base, apiOnline: null, apiModel: null, remote: null });
  showServerStatus(base ? { state: 'connecting', url: base } : { state: 'off' });
  if (!base) return null;
  stopWatching = watchStatus(base, (status) => {
    if (state.api !== base) return;
    state.apiOnline = status.online;
    state.apiModel = status.model?.name ?? null;
    showServerStatus({ state: status.online ? 'online' : 'offline', url: base, model: state.apiModel, message: status.message });
  }, { intervalMs: POLL_MS });
  return base;
}

/** Whether the address typed in `value` is the server already in use. */
export function isCurrentServer(state, value) {
  try {
    return Boolean(state.api) && apiBaseUrl(value) === state.api;
  } catch {
    return false;
  }
}

/**
 * Detect on an upright bitmap with the server: resize and encode in the browser, send, and return the
 * detections in the bitmap's own pixels (the same records as the in-browser detector).
 */
export async function detectOnServer(state, bitmap, scoreThreshold) {
  const base = state.api;
  const upload = await uprightJpeg(bitmap);
  // The pixels are already upright (EXIF applied when decoding), so the server must not rotate them again.
  const answer = await detectRemote(base, upload.blob, { scoreThreshold, orientation: 1 });
  const received = { width: answer.width ?? upload.width, height: answer.height ?? upload.height };
  state.remote = { url: base, sent: [upload.width, upload.height], bytes: upload.blob.size,
    received: [received.width, received.height], inference_ms: answer.inference_ms, ms: answer.ms };
  return scaleDetections(answer.detections, received, { width: bitmap.width, height: bitmap.height });
}
