// The detector shared by the app and the Node tools: loads a webdet web model (model.json + metadata.json)
// or a TF2 Object Detection API export, warms it up once, and turns a frame into detection records.
//   const detector = await load('model/');          // or fromGraphModel(graphModel, metadata)
//   const found = await detector.detect(video, { scoreThreshold: 0.4 });
//   detector.dispose();
// Pre- and post-processing are preprocess.js and postprocess.js (docs/metadata.md); no tensor outlives a call.
import * as tf from '@tensorflow/tfjs';
import { postprocess } from './postprocess.js';
import { toModelInput } from './preprocess.js';

export class ModelLoadError extends Error {}

const OD_API_OUTPUTS = ['detection_boxes', 'detection_scores', 'detection_classes', 'num_detections'];
const OD_API_DEFAULTS = { labels: [], score_threshold: 0.5, max_detections: 100, name: 'TF2 OD API model' };
const OD_API_WARMUP_SIZE = 320; // OD API exports take any frame size; this one stands in for a dynamic one

/** GETs a JSON file; every failure is a ModelLoadError that names the URL (and the HTTP status). */
export async function fetchModelJson(url) {
  let response;
  try {
    response = await fetch(url);
  } catch {
    throw new ModelLoadError(`Cannot reach ${url} (network error or blocked by CORS).`);
  }
  if (!response.ok) throw new ModelLoadError(`${url} answered ${response.status} ${response.statusText}.`);
  try {
    return await response.json();
  } catch {
    throw new ModelLoadError(`${url} is not valid JSON.`);
  }
}

/**
 * Loads the model under `baseUrl` (a folder URL ending with '/') and resolves once it has run one warm-up
 * inference. A metadata.json beside model.json makes it a webdet model; without one, model.json must be an
 * OD API export. onProgress(fraction) follows the weights download; fetchJson(url) and
 * loadGraphModel(url, {onProgress}) stand in for the network where there is none (Node, tests).
 */
export async function load(baseUrl, options = {}) {
  const { onProgress, fetchJson = fetchModelJson, loadGraphModel = tf.loadGraphModel } = options;
  const modelUrl = new URL('model.json', baseUrl).href;
  const modelJson = await fetchJson(modelUrl);
  const metadata = await readMetadata(baseUrl, modelJson, fetchJson);
  let model;
  try {
    model = await loadGraphModel(modelUrl, { onProgress });
  } catch (err) {
    throw new ModelLoadError(`Cannot load the model weights from ${modelUrl}: ${err.message}`);
  }
  return fromGraphModel(model, metadata);
}

/** metadata.json, or null for an OD API export (which comes without one); any other model needs it. */
async function readMetadata(baseUrl, modelJson, fetchJson) {
  try {
    return await fetchJson(new URL('metadata.json', baseUrl).href);
  } catch (err) {
    if ('detection_boxes' in (modelJson.signature?.outputs ?? {})) return null;
    throw err;
  }
}

/**
 * A detector over a graph model already in memory (a tf.GraphModel, or anything with execute, executeAsync and
 * dispose). metadata: the webdet metadata.json; null, or one without `outputs` (labels only), for an OD API
 * export. Resolves after one warm-up inference on a zero frame of the model's input size, so the first real
 * frame does not pay for shader compilation and graph tracing; a model that fails it is disposed.
 */
export async function fromGraphModel(model, metadata = null) {
  const detector = metadata?.outputs ? webdetDetector(model, metadata) : odApiDetector(model, metadata);
  const [height, width] = warmUpSize(model, metadata);
  const frame = tf.zeros([height, width, 3], 'int32');
  try {
    await detector.detect(frame);
  } catch (err) {
    detector.dispose();
    throw new ModelLoadError(`The model failed its first run: ${err.message}`);
  } finally {
    frame.dispose();
  }
  return detector;
}

/** [H, W] of the warm-up frame: the metadata's input size, else the graph's own where it is fixed. */
function warmUpSize(model, metadata) {
  const shape = metadata?.input?.shape ?? model.inputs?.[0]?.shape ?? [];
  return [shape[1], shape[2]].map((d) => (d > 0 ? d : OD_API_WARMUP_SIZE));
}

/** A frame as an int32 Tensor3D [H, W, 3]; a tensor the caller passes is used as is and stays the caller's. */
function toFrame(source) {
  if (!(source instanceof tf.Tensor)) return tf.browser.fromPixels(source);
  if (source.rank !== 3 || source.shape[2] !== 3) {
    throw new Error(`a frame tensor must be [height, width, 3], not [${source.shape}]`);
  }
  return source;
}

/** Records in the source's pixels → the same boxes in a width x height frame (the source stretched onto it). */
function rescale(found, [frameHeight, frameWidth], width = frameWidth, height = frameHeight) {
  if (width === frameWidth && height === frameHeight) return found;
  const sx = width / frameWidth;
  const sy = height / frameHeight;
  return found.map((d) => ({ ...d, box: [d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy] }));
}

/**
 * The detector object around one kind's `infer(source, options) → {found, size}` (records in the source's
 * pixels and its [H, W]). detect(source, {scoreThreshold, maxDetections, width, height}): source is anything
 * tf.browser.fromPixels takes or an int32 Tensor3D [H, W, 3]; the threshold and the count default to the
 * metadata's; boxes are [xmin, ymin, xmax, ymax] in pixels of a width x height frame, the source's own size
 * unless given.
 */
function makeDetector(model, metadata, kind, infer) {
  let disposed = false;
  return {
    metadata,
    kind,
    async detect(source, options = {}) {
      if (disposed) throw new Error('this detector has been disposed');
      const { found, size } = await infer(source, options);
      return rescale(found, size, options.width, options.height);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      model.dispose();
    },
  };
}

/** webdet models: raw per-anchor boxes and scores by name (model.execute), then postprocess.js. */
function webdetDetector(model, metadata) {
  const names = [metadata.outputs.boxes.name, metadata.outputs.scores.name];
  return makeDetector(model, metadata, 'webdet', async (source, options) => {
    let size;
    const [boxes, scores] = tf.tidy(() => {
      const frame = toFrame(source);
      size = frame.shape.slice(0, 2);
      return model.execute(toModelInput(tf, frame, metadata), names);
    });
    try {
      const [b, s] = await Promise.all([boxes.data(), scores.data()]);
      const limited = options.maxDetections == null ? metadata : { ...metadata, max_detections: options.maxDetections };
      return { found: postprocess(b, s, limited, size[1], size[0], options.scoreThreshold), size };
    } finally {
      tf.dispose([boxes, scores]);
    }
  });
}

/** TF2 OD API exports: an int32 image in, outputs already NMS'ed and found by name; they need executeAsync. */
function odApiDetector(model, given) {
  const metadata = { ...OD_API_DEFAULTS, ...given };
  const names = odApiOutputNames(model.signature?.outputs);
  return makeDetector(model, metadata, 'od_api', async (source, options) => {
    let size;
    const input = tf.tidy(() => {
      const frame = toFrame(source);
      size = frame.shape.slice(0, 2);
      return frame.toInt().expandDims(0);
    });
    let results;
    try {
      results = await model.executeAsync(input, names);
    } finally {
      input.dispose();
    }
    try {
      const [boxes, scores, classes, count] = await Promise.all(results.map((t) => t.data()));
      return { found: odApiRecords({ boxes, scores, classes, count: count[0] }, metadata, size, options), size };
    } finally {
      tf.dispose(results);
    }
  });
}

/**
 * The graph's tensor for each OD API output. A SavedModel's outputs are its signature keys in sorted order, the
 * tensors Identity:0, Identity_1:0, …; the converter keeps a key only where dtype and shape single its output out
 * and lists the others by tensor name (detection_scores and detection_classes are both float [1, N]). A key it
 * dropped takes the unnamed output between those of its sorted neighbours that kept theirs, where that gap holds
 * as many unnamed outputs as dropped keys. Without a signature the keys are the node names.
 */
export function odApiOutputNames(outputs = {}) {
  const entries = Object.entries(outputs ?? {});
  if (entries.length === 0) return OD_API_OUTPUTS;
  const position = (tensor) => {
    const match = /^Identity(?:_(\d+))?:0$/.exec(tensor);
    return match ? Number(match[1] ?? 0) : NaN;
  };
  const named = entries.filter(([key, info]) => key !== info.name).map(([key, info]) => [key, position(info.name)]);
  const unnamed = entries.filter(([key, info]) => key === info.name).map(([, info]) => info.name);
  const dropped = OD_API_OUTPUTS.filter((key) => !(key in outputs)).sort();
  const gap = (key) => [Math.max(-1, ...named.filter(([k]) => k < key).map(([, at]) => at)),
    Math.min(Infinity, ...named.filter(([k]) => k > key).map(([, at]) => at))].join();
  return OD_API_OUTPUTS.map((key) => {
    if (key in outputs) return outputs[key].name;
    const [low, high] = gap(key).split(',').map(Number);
    const slots = unnamed.filter((t) => position(t) > low && position(t) < high).sort((a, b) => position(a) - position(b));
    const peers = dropped.filter((k) => gap(k) === gap(key));
    if (slots.length !== peers.length) {
      throw new ModelLoadError(`Cannot tell which output of the model is ${key}: its signature names ` +
        `${named.map(([k]) => k).join(', ') || 'none'} and leaves ${unnamed.join(', ')} unnamed.`);
    }
    return slots[peers.indexOf(key)];
  });
}

/** OD API outputs (normalised ymin, xmin, ymax, xmax; sorted by score) → records in the source's pixels. */
function odApiRecords({ boxes, scores, classes, count }, metadata, [height, width], options) {
  const threshold = options.scoreThreshold ?? metadata.score_threshold;
  const limit = options.maxDetections ?? metadata.max_detections;
  const found = [];
  for (let i = 0; i < count && found.length < limit; i += 1) {
    if (scores[i] < threshold) continue;
    const [y0, x0, y1, x1] = boxes.subarray(i * 4, i * 4 + 4);
    const id = classes[i];
    found.push({ box: [x0 * width, y0 * height, x1 * width, y1 * height], score: scores[i], label_id: id,
      label: metadata.labels.find((l) => l.id === id)?.name ?? `class ${id}` });
  }
  return found;
}
