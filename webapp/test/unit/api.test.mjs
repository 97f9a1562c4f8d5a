// The detection-server client: addresses, status, multipart upload, errors, polling and box scaling.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { ApiError, apiBaseUrl, apiStatus, detectRemote, watchStatus } from '../../src/api.js';
import { fitLongSide, scaleDetections } from '../../src/upload.js';

const json = (status, body) => async () => new Response(JSON.stringify(body), {
  status, headers: { 'Content-Type': 'application/json' } });

test('base URLs are absolute, end with a slash and drop query and fragment', () => {
  assert.equal(apiBaseUrl('http://127.0.0.1:8000'), 'http://127.0.0.1:8000/');
  assert.equal(apiBaseUrl(' https://host.example/det?x=1#y '), 'https://host.example/det/');
  assert.equal(apiBaseUrl('/det', 'http://page.example/app/'), 'http://page.example/det/');
  assert.throws(() => apiBaseUrl('ftp://host/'), ApiError);
  assert.throws(() => apiBaseUrl('not a url'), ApiError);
});

test('status: 200 with ready is online and names the model', async () => {
  const s = await apiStatus('http://api/', { fetchImpl: json(200, { status: 'ok', ready: true, model: { name: 'shapes' } }) });
  assert.equal(s.online, true);
  assert.equal(s.model.name, 'shapes');
});

test('status: 503 loading, a network error and 200 without ready are offline', async () => {
  const loading = await apiStatus('http://api/', { fetchImpl: json(503, { status: 'loading', ready: false }) });
  assert.deepEqual([loading.online, loading.status, loading.httpStatus, loading.message], [false, 'loading', 503, 'model loading']);
  const down = await apiStatus('http://api/', { fetchImpl: async () => { throw new TypeError('Failed to fetch'); } });
  assert.deepEqual([down.online, down.status], [false, 'unreachable']);
  const odd = await apiStatus('http://api/', { fetchImpl: async () => new Response('<html>', { status: 200 }) });
  assert.equal(odd.online, false);
});

test('status: a server that never answers is offline after the timeout', async () => {
  const hang = (url, init) => new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(new Error('aborted'))));
  const s = await apiStatus('http://api/', { fetchImpl: hang, timeoutMs: 50 });
  assert.equal(s.online, false);
});

test('detect sends multipart `file` with orientation=1 and the threshold, and returns the records', async (t) => {
  let seen = null;
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const request = new Request(`http://x${req.url}`, { method: 'POST', headers: req.headers, body: Buffer.concat(chunks) });
    const form = await request.formData();
    const file = form.get('file');
    seen = { url: req.url, type: req.headers['content-type'], orientation: form.get('orientation'),
      fileName: file.name, fileType: file.type, bytes: (await file.arrayBuffer()).byteLength };
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ width: 640, height: 480, inference_ms: 12.5,
      detections: [{ box: [10, 20, 110, 220], score: 0.9, label_id: 2, label: 'square' }] }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}/`;
  const blob = new Blob([new Uint8Array([0xff, 0xd8, 0xff, 0xd9])], { type: 'image/jpeg' });
  const answer = await detectRemote(base, blob, { scoreThreshold: 0.4 });
  assert.ok(seen.url.startsWith('/api/detect?') && seen.url.includes('score_threshold=0.4'), seen.url);
  assert.ok(seen.type.startsWith('multipart/form-data'));
  assert.deepEqual([seen.orientation, seen.fileName, seen.fileType, seen.bytes], ['1', 'image.jpg', 'image/jpeg', 4]);
  assert.deepEqual([answer.width, answer.height, answer.inference_ms], [640, 480, 12.5]);
  assert.deepEqual(answer.detections, [{ box: [10, 20, 110, 220], score: 0.9, label_id: 2, label: 'square' }]);
});

test('detect: the server\'s own error is shown with the HTTP status', async () => {
  const blob = new Blob(['x']);
  await assert.rejects(detectRemote('http://api/', blob, { fetchImpl: json(400, { error: 'the body is not an image' }) }),
    (err) => err instanceof ApiError && err.status === 400 && err.message === 'the detection server answered 400: the body is not an image');
  await assert.rejects(detectRemote('http://api/', blob, { fetchImpl: json(200, { width: 1 }) }), /without a detection list/);
});

test('detect: an unreachable server says how to start one for this origin', async () => {
  const down = async () => { throw new TypeError('Failed to fetch'); };
  await assert.rejects(detectRemote('http://127.0.0.1:9/', new Blob(['x']), { fetchImpl: down, origin: 'http://127.0.0.1:8080' }),
    { message: 'cannot reach the detection server at http://127.0.0.1:9/ — is `webdet serve --cors-origin http://127.0.0.1:8080` running?' });
  await assert.rejects(detectRemote('http://det.example/', new Blob(['x']), { fetchImpl: down, origin: 'https://app.example' }),
    /an https page may not call an http server/);
});

test('watchStatus polls one request at a time until stopped', async () => {
  const seen = [];
  let calls = 0;
  const stop = watchStatus('http://api/', (s) => seen.push(s.online), {
    intervalMs: 5, check: async () => ({ online: (calls += 1) % 2 === 1 }) });
  await new Promise((resolve) => setTimeout(resolve, 60));
  stop();
  const count = seen.length;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.ok(count >= 3, `polled ${count} times`);
  assert.equal(seen.length, count, 'no answer after stop');
  assert.deepEqual(seen.slice(0, 3), [true, false, true]);
});

test('the long side fits 1280 px, never upscaled', () => {
  assert.deepEqual(fitLongSide(4032, 3024), { width: 1280, height: 960 });
  assert.deepEqual(fitLongSide(3024, 4032), { width: 960, height: 1280 });
  assert.deepEqual(fitLongSide(640, 480), { width: 640, height: 480 });
  assert.deepEqual(fitLongSide(1280, 10), { width: 1280, height: 10 });
});

test('boxes from the resized image scale back to the displayed image', () => {
  const d = [{ box: [128, 96, 640, 480], score: 0.8, label_id: 1, label: 'circle' }];
  const back = scaleDetections(d, { width: 1280, height: 960 }, { width: 4032, height: 3024 });
  assert.deepEqual(back[0].box.map((v) => Math.round(v * 10) / 10), [403.2, 302.4, 2016, 1512]);
  assert.deepEqual([back[0].label_id, back[0].label, back[0].score], [1, 'circle', 0.8]);
  assert.deepEqual(scaleDetections([{ box: [-5, 0, 2000, 10] }], { width: 100, height: 100 }, { width: 100, height: 100 })[0].box,
    [0, 0, 100, 10]);
});
