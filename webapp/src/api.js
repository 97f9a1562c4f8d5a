// The detection server's HTTP API (`webdet serve`): its status, detection on an uploaded image, and a
// status poller. No DOM here, so it runs the same in the page and in Node tests (fetch is injectable).

export class ApiError extends Error {
  constructor(message, status = null) {
    super(message);
    this.status = status;
  }
}

/** The server's base URL, absolute and ending with '/'. Throws ApiError for anything but http(s). */
export function apiBaseUrl(given, pageUrl = globalThis.location?.href) {
  let url;
  try {
    url = new URL(String(given).trim(), pageUrl);
  } catch {
    throw new ApiError(`"${given}" is not a URL; give the detection server's address, e.g. http://127.0.0.1:8000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ApiError(`${url.href} is not an http(s) address; give the detection server's address, e.g. http://127.0.0.1:8000`);
  }
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.href;
}

function unreachable(baseUrl, origin) {
  const from = origin && origin !== 'null' ? origin : '*';
  const mixed = from.startsWith('https:') && baseUrl.startsWith('http:')
    ? ' (an https page may not call an http server: put the server behind https)' : '';
  return `cannot reach the detection server at ${baseUrl} — is \`webdet serve --cors-origin ${from}\` running?${mixed}`;
}

async function fetchWithTimeout(fetchImpl, url, init, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await fetchImpl(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * GET api/status. Never throws: returns {online, status, httpStatus, model, version, message}.
 * online is true only for 200 with ready: true; 503, a network error or a CORS refusal are offline.
 */
export async function apiStatus(baseUrl, { fetchImpl = globalThis.fetch, timeoutMs = 2500 } = {}) {
  let response;
  try {
    response = await fetchWithTimeout(fetchImpl, new URL('api/status', baseUrl).href, { cache: 'no-store' }, timeoutMs);
  } catch {
    return { online: false, status: 'unreachable', httpStatus: null, model: null, version: null,
      message: 'no answer: server down, wrong address or CORS refused' };
  }
  const body = await readJson(response);
  const online = response.status === 200 && body?.ready === true;
  let message = null;
  if (!online) {
    if (body?.status === 'loading') message = 'model loading';
    else if (body?.error || body?.message) message = String(body.error ?? body.message);
    else message = `HTTP ${response.status}`;
  }
  return { online, status: body?.status ?? (online ? 'ok' : 'error'), httpStatus: response.status,
    model: body?.model ?? null, version: body?.version ?? null, message };
}

function toRecord(d) {
  const box = Array.isArray(d?.box) ? d.box.map(Number) : [];
  if (box.length !== 4 || box.some((v) => !Number.isFinite(v))) return null;
  return { box, score: Number(d.score), label_id: Number(d.label_id), label: String(d.label ?? `class ${d.label_id}`) };
}

/**
 * POST api/detect with `blob` as multipart field `file`. Returns {width, height, detections, inference_ms, ms}
 * with boxes in the pixels of the image sent. Throws ApiError with a message a person can act on.
 */
export async function detectRemote(baseUrl, blob, {
  scoreThreshold = null, maxDetections = null, orientation = 1, filename = 'image.jpg',
  fetchImpl = globalThis.fetch, timeoutMs = 60000, origin = globalThis.location?.origin,
} = {}) {
  const url = new URL('api/detect', baseUrl);
  if (scoreThreshold !== null && scoreThreshold !== undefined) url.searchParams.set('score_threshold', String(scoreThreshold));
  if (maxDetections !== null && maxDetections !== undefined) url.searchParams.set('max_detections', String(maxDetections));
  const form = new FormData();
  form.append('file', blob, filename);
  form.append('orientation', String(orientation));
  const start = Date.now();
  let response;
  try {
    response = await fetchWithTimeout(fetchImpl, url.href, { method: 'POST', body: form }, timeoutMs);
  } catch (err) {
    if (err?.name === 'AbortError') {
      throw new ApiError(`the detection server at ${baseUrl} did not answer within ${Math.round(timeoutMs / 1000)} s`);
    }
    throw new ApiError(unreachable(baseUrl, origin));
  }
  const body = await readJson(response);
  if (!response.ok) {
    const reason = body?.error ?? body?.detail ?? response.statusText ?? '';
    throw new ApiError(`the detection server answered ${response.status}${reason ? `: ${typeof reason === 'string' ? reason : JSON.stringify(reason)}` : ''}`,
      response.status);
  }
  if (!body || !Array.isArray(body.detections)) {
    throw new ApiError(`the detection server at ${baseUrl} answered ${response.status} without a detection list`, response.status);
  }
  const detections = body.detections.map(toRecord).filter(Boolean);
  return { width: Number(body.width) || null, height: Number(body.height) || null, detections,
    inference_ms: body.inference_ms ?? null, ms: Date.now() - start };
}

/**
 * Polls api/status every intervalMs (one request at a time) and calls onStatus with each answer.
 * Returns a function that stops the polling.
 */
export function watchStatus(baseUrl, onStatus, { intervalMs = 3000, check = apiStatus } = {}) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    const status = await check(baseUrl);
    if (stopped) return;
    onStatus(status);
    timer = setTimeout(tick, intervalMs);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
