// Loading a webdet web model (metadata.json + model.json) and running it on a frame.
// Also loads TF2 Object Detection API exports (outputs found by name, executeAsync only for those).
import * as tf from '@tensorflow/tfjs';
import { postprocess } from './postprocess.js';
import { toModelInput } from './preprocess.js';

export class ModelLoadError extends Error {}

async function fetchJson(url) {
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

/** baseUrl ends with '/'. Returns a detector {metadata, kind, detect(source, threshold), dispose()}. */
export async function loadDetector(baseUrl) {
  const modelUrl = new URL('model.json', baseUrl).href;
  const modelJson = await fetchJson(modelUrl);
  let metadata = null;
  try {
    metadata = await fetchJson(new URL('metadata.json', baseUrl).href);
  } catch (err) {
    const outputs = Object.keys(modelJson.signature?.outputs ?? {});
    if (!outputs.includes('detection_boxes')) throw err;
  }
  let model;
  try {
    model = await tf.loadGraphModel(modelUrl);
  } catch (err) {
    throw new ModelLoadError(`Cannot load the model weights from ${modelUrl}: ${err.message}`);
  }
  return metadata ? webdetDetector(model, metadata) : odApiDetector(model);
}

function webdetDetector(model, metadata) {
  const names = [metadata.outputs.boxes.name, metadata.outputs.scores.name];
  return {
    metadata,
    kind: 'webdet',
    async detect(source, width, height, threshold) {
      const [boxes, scores] = tf.tidy(() => {
        const frame = tf.browser.fromPixels(source);
        return model.execute(toModelInput(tf, frame, metadata), names);
      });
      try {
        const [b, s] = await Promise.all([boxes.data(), scores.data()]);
        return postprocess(b, s, metadata, width, height, threshold);
      } finally {
        tf.dispose([boxes, scores]);
      }
    },
    dispose: () => model.dispose(),
  };
}

function odApiDetector(model) {
  // TF2 OD API exports: uint8/int32 image in, NMS'ed outputs by name; they need executeAsync.
  const metadata = { labels: [], score_threshold: 0.5, max_detections: 100, name: 'TF2 OD API model' };
  const outputs = ['detection_boxes', 'detection_scores', 'detection_classes', 'num_detections'];
  const outputNames = outputs.map((key) => model.signature?.outputs?.[key]?.name?.split(':')[0] ?? key);
  return {
    metadata,
    kind: 'od_api',
    async detect(source, width, height, threshold) {
      const input = tf.tidy(() => tf.browser.fromPixels(source).expandDims(0).toInt());
      const results = await model.executeAsync(input, outputNames);
      input.dispose();
      try {
        const [boxes, scores, classes, count] = await Promise.all(results.map((t) => t.data()));
        const found = [];
        for (let i = 0; i < count[0]; i += 1) {
          if (scores[i] < threshold) continue;
          const [y0, x0, y1, x1] = boxes.subarray(i * 4, i * 4 + 4);
          found.push({ box: [x0 * width, y0 * height, x1 * width, y1 * height], score: scores[i],
            label_id: classes[i], label: `class ${classes[i]}` });
        }
        return found;
      } finally {
        tf.dispose(results);
      }
    },
    dispose: () => model.dispose(),
  };
}
