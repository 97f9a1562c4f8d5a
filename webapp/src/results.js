// The slider's threshold applied in the app: the detector is asked once per frame for everything down to
// the model's min_score, so the page can say how many detections the threshold hides without running the
// model a second time, and an uploaded image follows the slider without a new inference.

/** The lowest score asked for from a model whose metadata names no min_score (an OD API export). */
export const FLOOR = 0.05;

/** The lowest score to ask the detector for: the model's min_score (it reports nothing below it), or
 * FLOOR; never above the slider's threshold. */
export function candidateThreshold(metadata, threshold) {
  return Math.min(metadata?.min_score ?? FLOOR, threshold);
}

/** Detections ≥ threshold (in the detector's order) and how many fell below it. */
export function splitByThreshold(found, threshold) {
  const shown = found.filter((d) => d.score >= threshold);
  return { shown, below: found.length - shown.length };
}

/** "2 detections", or when the threshold hides everything the model found,
 * "0 detections · 3 below 0.30: lower the threshold to see them". */
export function detectionSummary(shown, below, threshold) {
  const text = `${shown} ${shown === 1 ? 'detection' : 'detections'}`;
  if (shown > 0 || below <= 0) return text;
  return `${text} · ${below} below ${threshold.toFixed(2)}: lower the threshold to see them`;
}
