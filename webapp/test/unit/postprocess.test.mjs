// The app's post-processing against the worked cases shared with the Python side.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { iou, scaleBox } from '../../src/boxes.js';
import { fitTransform, nms, postprocess, roundHalfEven } from '../../src/postprocess.js';

const fixture = new URL('../../../tests/fixtures/postprocess_cases.json', import.meta.url);
const { cases } = JSON.parse(fs.readFileSync(fixture, 'utf8'));
const close = (a, b, tol = 1e-3) => Math.abs(a - b) <= tol;

for (const c of cases) {
  test(c.name, () => {
    const got = postprocess(Float32Array.from(c.boxes.flat()), Float32Array.from(c.scores.flat()), c.metadata,
      c.frame[0], c.frame[1]);
    assert.equal(got.length, c.expected.length);
    got.forEach((g, i) => {
      const e = c.expected[i];
      assert.ok(g.box.every((v, k) => close(v, e.box[k])), `box ${g.box} vs ${e.box}`);
      assert.ok(close(g.score, e.score, 1e-6));
      assert.equal(g.label_id, e.label_id);
      assert.equal(g.label, e.label);
    });
  });
}

test('scaleBox scales each axis and clips to the image', () => {
  assert.deepEqual(scaleBox([10, 20, 50, 90], 2, 0.5, 80, 40), [20, 10, 80, 40]);
  assert.deepEqual(scaleBox([-5, 4, 8, 8], 1, 1, 100, 100), [0, 4, 8, 8]);
});

test('iou of identical, disjoint and half-overlapping boxes', () => {
  assert.equal(iou([0, 0, 1, 1], [0, 0, 1, 1]), 1);
  assert.equal(iou([0, 0, 1, 1], [2, 2, 3, 3]), 0);
  assert.ok(close(iou([0, 0, 1, 2], [0, 1, 1, 3]), 1 / 3));
});

test('nms breaks score ties by anchor order and respects the limit', () => {
  const kept = nms([{ anchor: 5, score: 0.5, box: [0, 0, 1, 1] }, { anchor: 2, score: 0.5, box: [0, 0, 1, 1] },
    { anchor: 9, score: 0.4, box: [5, 5, 6, 6] }], 0.5, 1);
  assert.deepEqual(kept.map((k) => k.anchor), [2]);
});

test('letterbox uses one scale, stretch one per axis', () => {
  const meta = (fit) => ({ input: { shape: [1, 320, 320, 3], fit } });
  assert.deepEqual(fitTransform(meta('letterbox'), 640, 480),
    { scaleY: 0.5, scaleX: 0.5, inH: 320, inW: 320, newH: 240, newW: 320 });
  assert.deepEqual(fitTransform(meta('stretch'), 640, 160),
    { scaleY: 2, scaleX: 0.5, inH: 320, inW: 320, newH: 320, newW: 320 });
});

test('letterbox rounds a tie to even, as TensorFlow does: 680x1024 → 212x320', () => {
  const meta = { input: { shape: [1, 320, 320, 3], fit: 'letterbox' } };
  const { newH, newW, scaleY } = fitTransform(meta, 1024, 680); // 680 * 0.3125 = 212.5
  assert.deepEqual([newH, newW], [212, 320]);
  assert.equal(scaleY, 212 / 680);
  assert.deepEqual([roundHalfEven(212.5), roundHalfEven(213.5), roundHalfEven(2.4), roundHalfEven(2.6)], [212, 214, 2, 3]);
});
