// The detector module on the cpu backend with mocked graph models: warm-up, records, limits, loading,
// disposal, and no tensor left behind after a call (the way tfjs-models' coco-ssd checks its own).
import assert from 'node:assert/strict';
import http from 'node:http';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ModelLoadError, fromGraphModel, load, odApiOutputNames } from '../../src/detector.js';

const METADATA = {
  name: 'mock',
  input: { name: 'input', shape: [1, 64, 64, 3], dtype: 'float32', fit: 'letterbox', align: 'top-left', pad_value: 0,
    normalization: { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] } },
  outputs: { boxes: { name: 'boxes' }, scores: { name: 'scores' } },
  labels: [{ id: 1, name: 'kangaroo' }, { id: 2, name: 'emu' }],
  score_threshold: 0.3, iou_threshold: 0.5, max_detections: 100,
};
// Four anchors, two classes; boxes are ymin, xmin, ymax, xmax as fractions of the 64x64 input.
const ANCHORS = {
  boxes: [[0.1, 0.2, 0.4, 0.6], [0.5, 0.0, 0.9, 0.2], [0.0, 0.7, 0.2, 0.9], [0.6, 0.6, 0.8, 0.8]],
  scores: [[0.9, 0.0], [0.1, 0.6], [0.05, 0.4], [0.2, 0.1]],
};
const close = (got, want) => got.every((v, i) => Math.abs(v - want[i]) < 1e-3);

before(async () => {
  tf.env().set('IS_TEST', true); // no "install the node backend" advice on stderr
  await tf.setBackend('cpu');
  await tf.ready();
});

/** A graph model stand-in for webdet exports: records each execute call, answers with fresh tensors. */
function webdetModel({ boxes, scores } = ANCHORS) {
  return {
    calls: [], asyncCalls: 0, disposed: 0,
    inputs: [{ name: 'input', shape: [1, 64, 64, 3], dtype: 'float32' }],
    execute(input, names) {
      this.calls.push({ shape: input.shape, dtype: input.dtype, names });
      return [tf.tensor3d([boxes], [1, boxes.length, 4]), tf.tensor3d([scores], [1, scores.length, 2])];
    },
    async executeAsync() {
      this.asyncCalls += 1;
      throw new Error('webdet models run with execute');
    },
    dispose() {
      this.disposed += 1;
    },
  };
}

/** A TF2 OD API export stand-in: NMS'ed outputs from executeAsync only, sorted by score. */
function odApiModel() {
  return {
    calls: [], syncCalls: 0, disposed: 0,
    inputs: [{ name: 'input_tensor', shape: [1, -1, -1, 3], dtype: 'int32' }],
    execute() {
      this.syncCalls += 1;
      throw new Error('OD API exports need executeAsync');
    },
    async executeAsync(input, names) {
      this.calls.push({ shape: input.shape, dtype: input.dtype, names });
      return [tf.tensor3d([[[0.5, 0.25, 1.0, 0.75], [0, 0, 0.5, 0.5], [0, 0, 0.1, 0.1]]]),
        tf.tensor2d([[0.8, 0.6, 0.2]]), tf.tensor2d([[3, 1, 1]]), tf.tensor1d([3])];
    },
    dispose() {
      this.disposed += 1;
    },
  };
}

/** A caller's frame: height x width RGB, int32 like tf.browser.fromPixels gives. */
const frame = (height, width) => tf.zeros([height, width, 3], 'int32');

test('warm-up: one execute on a zero frame of the input shape before resolving, no tensor kept', async () => {
  const model = webdetModel();
  const tensors = tf.memory().numTensors;
  const detector = await fromGraphModel(model, METADATA);
  assert.equal(model.calls.length, 1);
  assert.deepEqual(model.calls[0], { shape: [1, 64, 64, 3], dtype: 'float32', names: ['boxes', 'scores'] });
  assert.equal(model.asyncCalls, 0);
  assert.equal(tf.memory().numTensors, tensors);
  assert.deepEqual([detector.kind, detector.metadata], ['webdet', METADATA]);
});

test('a model that fails its warm-up is disposed and reported as a load error', async () => {
  const model = { ...webdetModel(), execute() { throw new Error('unsupported op Foo'); } };
  await assert.rejects(fromGraphModel(model, METADATA),
    (err) => err instanceof ModelLoadError && /Foo/.test(err.message));
  assert.equal(model.disposed, 1);
});

test('detect: records in the letterboxed source pixels, best first, at the metadata threshold', async () => {
  const detector = await fromGraphModel(webdetModel(), METADATA);
  const source = frame(64, 128); // letterbox scale 0.5: input pixels x2
  const found = await detector.detect(source);
  assert.deepEqual(found.map((d) => [d.label_id, d.label]), [[1, 'kangaroo'], [2, 'emu'], [2, 'emu']]);
  assert.ok(close(found[0].box, [25.6, 12.8, 76.8, 51.2]), `${found[0].box}`);
  assert.ok(Math.abs(found[0].score - 0.9) < 1e-6);
  assert.ok(close(found[1].box, [0, 64, 25.6, 64]), `${found[1].box}`); // clipped to the 64-pixel-high frame
  source.dispose();
});

test('detect: a threshold above every score gives no records, a lower one all above it', async () => {
  const detector = await fromGraphModel(webdetModel(), METADATA);
  const source = frame(64, 64);
  assert.deepEqual(await detector.detect(source, { scoreThreshold: 0.95 }), []);
  assert.equal((await detector.detect(source, { scoreThreshold: 0.15 })).length, 4);
  source.dispose();
});

test('detect: maxDetections keeps the best ones only', async () => {
  const detector = await fromGraphModel(webdetModel(), METADATA);
  const source = frame(64, 64);
  const found = await detector.detect(source, { maxDetections: 2 });
  assert.deepEqual(found.map((d) => d.score.toFixed(2)), ['0.90', '0.60']);
  source.dispose();
});

test('detect: width and height give the boxes in a frame of that size', async () => {
  const detector = await fromGraphModel(webdetModel(), METADATA);
  const source = frame(64, 128);
  const [own] = await detector.detect(source);
  const [scaled] = await detector.detect(source, { width: 256, height: 128 });
  assert.ok(close(scaled.box, own.box.map((v) => v * 2)), `${scaled.box}`);
  source.dispose();
});

test('detect: pixel data as fromPixels takes it, its own size by default', async () => {
  const detector = await fromGraphModel(webdetModel(), METADATA);
  const pixels = { data: new Uint8Array(128 * 64 * 4), width: 128, height: 64 };
  const [first] = await detector.detect(pixels);
  assert.ok(close(first.box, [25.6, 12.8, 76.8, 51.2]), `${first.box}`);
});

test('detect: a tensor that is not [H, W, 3] is refused', async () => {
  const detector = await fromGraphModel(webdetModel(), METADATA);
  const gray = tf.zeros([64, 64, 1], 'int32');
  await assert.rejects(detector.detect(gray), /\[height, width, 3\]/);
  gray.dispose();
});

test('no tensor leak over many detect calls, and the caller keeps its own frame', async () => {
  const detector = await fromGraphModel(webdetModel(), METADATA);
  const source = frame(48, 80);
  const pixels = { data: new Uint8Array(80 * 48 * 4), width: 80, height: 48 };
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 5; i += 1) {
    await detector.detect(source);
    await detector.detect(pixels, { scoreThreshold: 0.5, maxDetections: 1, width: 160, height: 96 });
  }
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(source.isDisposed, false);
  assert.equal((await source.data()).length, 48 * 80 * 3);
  source.dispose();
});

test('dispose frees the model once; detect afterwards is refused', async () => {
  const model = webdetModel();
  const detector = await fromGraphModel(model, METADATA);
  detector.dispose();
  detector.dispose();
  assert.equal(model.disposed, 1);
  const source = frame(8, 8);
  await assert.rejects(detector.detect(source), /disposed/);
  source.dispose();
});

test('OD API exports: executeAsync only, warm-up on an int32 frame, label ids from the classes, no leak', async () => {
  const model = odApiModel();
  const tensors = tf.memory().numTensors;
  const detector = await fromGraphModel(model, null);
  assert.deepEqual(model.calls, [{ shape: [1, 320, 320, 3], dtype: 'int32', names:
    ['detection_boxes', 'detection_scores', 'detection_classes', 'num_detections'] }]);
  const source = frame(100, 200);
  const before = tf.memory().numTensors;
  const found = await detector.detect(source);
  for (let i = 0; i < 3; i += 1) await detector.detect(source, { scoreThreshold: 0.1 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(model.syncCalls, 0);
  assert.equal(detector.kind, 'od_api');
  assert.deepEqual(found.map((d) => [d.label_id, d.label]), [[3, 'class 3'], [1, 'class 1']]); // threshold 0.5
  assert.ok(close(found[0].box, [50, 50, 150, 100]), `${found[0].box}`);
  assert.deepEqual(model.calls.at(-1).shape, [1, 100, 200, 3]);
  assert.equal((await detector.detect(source, { scoreThreshold: 0.1, maxDetections: 2 })).length, 2);
  source.dispose();
  detector.dispose();
  assert.equal(model.disposed, 1);
  assert.equal(tf.memory().numTensors, tensors);
});

test('OD API exports: labels from the metadata where it names them', async () => {
  const detector = await fromGraphModel(odApiModel(), { labels: [{ id: 3, name: 'car' }] });
  const source = frame(10, 10);
  const found = await detector.detect(source);
  assert.deepEqual(found.map((d) => d.label), ['car', 'class 1']);
  source.dispose();
});

/** fetchJson over a table of URL → JSON; anything else is a 404, as the real one reports it. */
const jsonTable = (table) => async (url) => {
  if (url in table) return table[url];
  throw new ModelLoadError(`${url} answered 404 Not Found.`);
};

/** The JSON files of a webdet model folder at http://models.example/m/. */
const webdetFolder = () => jsonTable({
  'http://models.example/m/model.json': {}, 'http://models.example/m/metadata.json': METADATA });

test('load: model.json and metadata.json from the folder, progress handed on, warmed up once', async () => {
  const model = webdetModel();
  const onProgress = () => {};
  let loaded;
  const detector = await load('http://models.example/m/', {
    onProgress,
    fetchJson: webdetFolder(),
    loadGraphModel: async (url, options) => {
      loaded = { url, options };
      return model;
    },
  });
  assert.deepEqual(loaded, { url: 'http://models.example/m/model.json', options: { onProgress } });
  assert.equal(detector.kind, 'webdet');
  assert.equal(model.calls.length, 1);
});

test('load: an OD API export needs no metadata.json; other models do', async () => {
  const odApi = { signature: { outputs: { detection_boxes: { name: 'detection_boxes:0' } } } };
  const detector = await load('http://models.example/od/', {
    fetchJson: jsonTable({ 'http://models.example/od/model.json': odApi }), loadGraphModel: async () => odApiModel() });
  assert.equal(detector.kind, 'od_api');
  await assert.rejects(load('http://models.example/x/', {
    fetchJson: jsonTable({ 'http://models.example/x/model.json': {} }), loadGraphModel: async () => webdetModel() }),
  (err) => err instanceof ModelLoadError && err.message.includes('http://models.example/x/metadata.json'));
});

test('load: weights that do not load name the model URL', async () => {
  const loadGraphModel = async () => {
    throw new Error('bad shard');
  };
  await assert.rejects(load('http://models.example/m/', { fetchJson: webdetFolder(), loadGraphModel }),
    (err) => err instanceof ModelLoadError && /http:\/\/models.example\/m\/model.json: bad shard/.test(err.message));
});

test('load: a missing model.json names its URL and the HTTP status', async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('no');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/nowhere/`;
  try {
    await assert.rejects(load(base), (err) => err instanceof ModelLoadError
      && err.message.includes(`${base}model.json`) && err.message.includes('404'));
  } finally {
    server.close();
  }
});

test('OD API outputs: keys the converter dropped are found between their named neighbours', () => {
  // A TF2 OD API export's eight outputs, Identity..Identity_7 in sorted-key order; the converter keeps a key only
  // where dtype and shape tell it apart, so anchor indices, classes and scores (all float [1, 100]) lose theirs.
  const tensor = (n) => ({ name: n ? `Identity_${n}:0` : 'Identity:0' });
  const outputs = {
    'Identity:0': tensor(0), detection_boxes: tensor(1), 'Identity_2:0': tensor(2),
    detection_multiclass_scores: tensor(3), 'Identity_4:0': tensor(4), num_detections: tensor(5),
    raw_detection_boxes: tensor(6), raw_detection_scores: tensor(7),
  };
  assert.deepEqual(odApiOutputNames(outputs), ['Identity_1:0', 'Identity_4:0', 'Identity_2:0', 'Identity_5:0']);
  assert.deepEqual(odApiOutputNames(undefined), ['detection_boxes', 'detection_scores', 'detection_classes', 'num_detections']);
  const ambiguous = { detection_boxes: tensor(0), 'Identity_1:0': tensor(1), num_detections: tensor(3) };
  assert.throws(() => odApiOutputNames(ambiguous), (err) => err instanceof ModelLoadError && /detection_scores/.test(err.message));
});
