// The app's pure parts: a colour per class, the threshold hint, the download in bytes, steady-state timing
// and the perf line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PALETTE, colourFor } from '../../src/colours.js';
import { countingFetch, loadingText, weightBytes } from '../../src/loading.js';
import { FLOOR, candidateThreshold, detectionSummary, splitByThreshold } from '../../src/results.js';
import { FrameTimes, median } from '../../src/timing.js';
import { perfText } from '../../src/ui.js';

test('each label_id has its own fixed colour, ids past the palette wrap, odd ids get a colour too', () => {
  assert.equal(colourFor(1), PALETTE[0]);
  assert.equal(colourFor(2), PALETTE[1]);
  assert.equal(colourFor('3'), PALETTE[2]);
  assert.equal(colourFor(PALETTE.length + 1), PALETTE[0]);
  assert.equal(colourFor(0), PALETTE[PALETTE.length - 1]);
  assert.equal(new Set(PALETTE.map((_, i) => colourFor(i + 1))).size, PALETTE.length);
  assert.equal(colourFor(undefined), PALETTE[0]);
  for (const colour of PALETTE) assert.match(colour, /^#[0-9a-f]{6}$/);
});

const found = [0.9, 0.45, 0.2, 0.06].map((score, i) => ({ score, label_id: 1, label: 'circle', box: [i, i, i + 1, i + 1] }));

test('the threshold splits what the detector found once: shown in order, and a count of the rest', () => {
  const at = splitByThreshold(found, 0.3);
  assert.deepEqual(at.shown.map((d) => d.score), [0.9, 0.45]);
  assert.equal(at.below, 2);
  assert.deepEqual(splitByThreshold(found, 0.95), { shown: [], below: 4 });
  assert.deepEqual(splitByThreshold([], 0.5), { shown: [], below: 0 });
  assert.equal(splitByThreshold(found, 0.45).shown.length, 2, 'a score equal to the threshold is shown');
});

test('the detector is asked down to min_score, or the floor, never above the slider', () => {
  assert.equal(candidateThreshold({ min_score: 0.05 }, 0.3), 0.05);
  assert.equal(candidateThreshold({ min_score: 0.05 }, 0.02), 0.02);
  assert.equal(candidateThreshold({}, 0.5), FLOOR);
  assert.equal(candidateThreshold(null, 0.5), FLOOR);
});

test('the hint appears only when the threshold hides everything the model found', () => {
  assert.equal(detectionSummary(0, 3, 0.3), '0 detections · 3 below 0.30: lower the threshold to see them');
  assert.equal(detectionSummary(0, 1, 0.955), '0 detections · 1 below 0.95: lower the threshold to see them');
  assert.equal(detectionSummary(0, 0, 0.3), '0 detections');
  assert.equal(detectionSummary(1, 4, 0.3), '1 detection');
  assert.equal(detectionSummary(2, 0, 0.3), '2 detections');
});

test('the download total is the weightsManifest: elements × bytes, quantized weights at their stored size', () => {
  const modelJson = { weightsManifest: [
    { paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: [
      { name: 'a', shape: [3, 3, 3, 16], dtype: 'float32' }, { name: 'b', shape: [16], dtype: 'float32' },
      { name: 'c', shape: [], dtype: 'int32' }] },
    { paths: ['group2-shard1of1.bin'], weights: [
      { name: 'q8', shape: [10, 10], dtype: 'float32', quantization: { dtype: 'uint8', min: -1, scale: 0.01 } },
      { name: 'q16', shape: [5], dtype: 'float32', quantization: { dtype: 'float16' } }] }] };
  assert.equal(weightBytes(modelJson), 432 * 4 + 16 * 4 + 4 + 100 + 5 * 2);
  assert.equal(weightBytes({ weightsManifest: [] }), 0);
  assert.equal(weightBytes({ weightsManifest: [{ paths: [], weights: [{ shape: [2], dtype: 'string' }] }] }), null);
});

test('the loading line counts megabytes, falls back to the fraction, then says the model is being prepared', () => {
  assert.equal(loadingText({ loaded: 3.1e6, total: 10.7e6, fraction: 0.5 }), 'Loading the model… 3.1 of 10.7 MB');
  assert.equal(loadingText({ loaded: 0, total: 10.7e6, fraction: 0 }), 'Loading the model… 0.0 of 10.7 MB');
  assert.equal(loadingText({ loaded: 2e5, total: 4.5e5 }), 'Loading the model… 0.20 of 0.45 MB');
  assert.equal(loadingText({ loaded: 12e6, total: 10.7e6 }), 'Loading the model… 10.7 of 10.7 MB');
  assert.equal(loadingText({ total: null, fraction: 0.25 }), 'Loading the model… 25%');
  assert.equal(loadingText({ loaded: 10.7e6, total: 10.7e6, fraction: 1 }), 'Preparing the model…');
});

test('the counting fetch reports the bytes of weight requests as their bodies are read', async () => {
  const body = new Uint8Array(1000).fill(7);
  const fetchImpl = async (url) => (url.endsWith('missing.bin') ? new Response('no', { status: 404 })
    : new Response(body, { status: 200, headers: { 'Content-Type': 'application/octet-stream' } }));
  const counted = [];
  const fetchFunc = countingFetch((n) => counted.push(n), fetchImpl);
  const weights = await fetchFunc('http://m/group1-shard1of1.bin', {}, { isBinary: true });
  assert.equal(weights.ok, true);
  assert.equal(weights.headers.get('content-type'), 'application/octet-stream');
  assert.deepEqual(new Uint8Array(await weights.arrayBuffer()), body);
  assert.equal(counted.reduce((a, b) => a + b, 0), 1000);
  await (await fetchFunc('http://m/model.json', {})).arrayBuffer();
  const missing = await fetchFunc('http://m/missing.bin', {}, { isBinary: true });
  assert.equal(missing.status, 404);
  assert.equal(counted.reduce((a, b) => a + b, 0), 1000, 'only weight shards that arrived count');
});

test('steady ms/frame: the median of the last frames, the first ones left out, none before enough', () => {
  assert.equal(median([]), null);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  const times = new FrameTimes({ skip: 2, window: 4, min: 3 });
  [900, 800, 10].forEach((ms) => times.add(ms));
  assert.equal(times.steady, null, 'the warm-up frames do not count');
  [20, 30].forEach((ms) => times.add(ms));
  assert.equal(times.steady, 20);
  [40, 50, 60].forEach((ms) => times.add(ms));
  assert.equal(times.steady, 45, 'only the last `window` frames');
  const defaults = new FrameTimes();
  for (let i = 0; i < 40; i += 1) defaults.add(i < 5 ? 1000 : 50 + (i % 3));
  assert.equal(defaults.steady, 51);
  assert.equal(defaults.times.length, 30);
});

test('the perf line: FPS and steady ms/frame in the loop, one inference for an image, time to first detection', () => {
  const state = { fps: 9.84, ms: 102.4, steady_ms: null, backend: 'wasm', tensors: 212, ttfd_ms: null };
  assert.equal(perfText(state, true), '9.8 FPS · 102 ms/frame · wasm · 212 tensors');
  assert.equal(perfText({ ...state, steady_ms: 95.2, ttfd_ms: 3240 }, true),
    '9.8 FPS · 95 ms/frame steady · wasm · 212 tensors · first detection 3.2 s after opening');
  assert.equal(perfText({ ...state, ttfd_ms: 3240 }, false), '102 ms · wasm · 212 tensors · first detection 3.2 s after opening');
});
