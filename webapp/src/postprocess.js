// Raw model outputs → detections in the original frame, exactly as docs/metadata.md specifies.
// Pure JavaScript (no TF.js) so it runs the same in the page, in Node tests and in the export's parity check.
import { clip, iou, scaleBox } from './boxes.js';

/** Greedy NMS over candidates sorted by score (ties: lower anchor index first). */
export function nms(candidates, iouThreshold, limit) {
  const sorted = [...candidates].sort((p, q) => q.score - p.score || p.anchor - q.anchor);
  const kept = [];
  for (const c of sorted) {
    if (kept.length >= limit) break;
    if (kept.every((k) => iou(k.box, c.box) <= iouThreshold)) kept.push(c);
  }
  return kept;
}

/**
 * Merge-NMS: a kept box moved to the IoU x score weighted mean of the voters ({box, score}) that overlap it by
 * more than iouThreshold, itself among them (docs/metadata.md, merge_boxes).
 */
export function mergeBox(box, voters, iouThreshold) {
  const sum = [0, 0, 0, 0];
  let total = 0;
  for (const v of voters) {
    const overlap = iou(box, v.box);
    if (overlap > iouThreshold) {
      const w = overlap * v.score;
      for (let i = 0; i < 4; i += 1) sum[i] += w * v.box[i];
      total += w;
    }
  }
  return total > 0 ? sum.map((s) => s / total) : box;
}

/**
 * x rounded half to even, as TensorFlow's tf.round: 212.5 → 212, 213.5 → 214 (Math.round gives 213 and 214).
 */
export function roundHalfEven(x) {
  const down = Math.floor(x);
  if (x - down !== 0.5) return Math.round(x);
  return down % 2 === 0 ? down : down + 1;
}

/**
 * How the frame was fitted into the model input. Letterbox resizes to round(H*s) x round(W*s) with
 * s = min(inH/H, inW/W), computed as the SavedModel's Model Garden preprocessing computes it (float32, ties to
 * even: a 680x1024 frame becomes 212x320, not 213x320), so each axis has its own exact scale (resized size /
 * frame size); stretch fills the input. {scaleY, scaleX, inH, inW, newH, newW}.
 */
export function fitTransform(metadata, frameWidth, frameHeight) {
  const [, inH, inW] = metadata.input.shape;
  if (metadata.input.fit === 'stretch') {
    return { scaleY: inH / frameHeight, scaleX: inW / frameWidth, inH, inW, newH: inH, newW: inW };
  }
  const scale = Math.min(Math.fround(inH / frameHeight), Math.fround(inW / frameWidth));
  const newH = Math.min(inH, roundHalfEven(Math.fround(frameHeight * scale)));
  const newW = Math.min(inW, roundHalfEven(Math.fround(frameWidth * scale)));
  return { scaleY: newH / frameHeight, scaleX: newW / frameWidth, inH, inW, newH, newW };
}

/**
 * boxes: Float32Array [N*4] (ymin, xmin, ymax, xmax as fractions of the model input);
 * scores: Float32Array [N*K]. Returns [{box: [xmin, ymin, xmax, ymax] in frame pixels, score, label_id, label}].
 */
export function postprocess(boxes, scores, metadata, frameWidth, frameHeight, scoreThreshold) {
  const minScore = metadata.min_score ?? 0;
  const threshold = Math.max(scoreThreshold ?? metadata.score_threshold, minScore);
  const labels = metadata.labels;
  const k = labels.length;
  const n = scores.length / k;
  const limit = metadata.max_detections;
  const t = fitTransform(metadata, frameWidth, frameHeight);
  // Boxes are clipped to the image inside the letterbox before NMS, as the SavedModel's decoder does.
  const maxY = (frameHeight * t.scaleY) / t.inH;
  const maxX = (frameWidth * t.scaleX) / t.inW;
  const inImage = (a) => [clip(boxes[a * 4], maxY), clip(boxes[a * 4 + 1], maxX), clip(boxes[a * 4 + 2], maxY),
    clip(boxes[a * 4 + 3], maxX)];
  let detections = [];
  for (let c = 0; c < k; c += 1) {
    const candidates = [];
    // Every box of this class at or above min_score votes in merge-NMS, also those the threshold hides.
    const voters = [];
    for (let a = 0; a < n; a += 1) {
      const score = scores[a * k + c];
      if (score < minScore) continue; // threshold is never below minScore
      const box = inImage(a);
      if (score >= threshold) candidates.push({ anchor: a, score, box });
      if (metadata.merge_boxes) voters.push({ score, box });
    }
    for (const d of nms(candidates, metadata.iou_threshold, limit)) {
      const box = metadata.merge_boxes ? mergeBox(d.box, voters, metadata.iou_threshold) : d.box;
      detections.push({ ...d, box, column: c });
    }
  }
  detections.sort((p, q) => q.score - p.score || p.anchor - q.anchor);
  detections = detections.slice(0, limit);
  return detections.map((d) => {
    const [y0, x0, y1, x1] = d.box;
    return {
      box: scaleBox([x0, y0, x1, y1], t.inW / t.scaleX, t.inH / t.scaleY, frameWidth, frameHeight),
      score: d.score,
      label_id: labels[d.column].id,
      label: labels[d.column].name,
    };
  });
}
