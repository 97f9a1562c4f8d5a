// Boxes: the one place the app measures, clips and rescales them. A detection's box is
// [xmin, ymin, xmax, ymax] in pixels of the image it was found in (docs/metadata.md).

/** IoU of two boxes in the same corner layout (xyxy or yxyx: the formula is the same). */
export function iou(a, b) {
  const ih = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iw = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ih * iw;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** v held inside [0, hi]. */
export function clip(v, hi) {
  return Math.min(Math.max(v, 0), hi);
}

/** An [xmin, ymin, xmax, ymax] box scaled by (sx, sy) and clipped to a width × height image. */
export function scaleBox([x0, y0, x1, y1], sx, sy, width, height) {
  return [clip(x0 * sx, width), clip(y0 * sy, height), clip(x1 * sx, width), clip(y1 * sy, height)];
}
