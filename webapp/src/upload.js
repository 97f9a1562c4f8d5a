// An upright image → the JPEG sent to the detection server (long side at most MAX_SIDE, never
// upscaled), and the server's boxes → the displayed image's pixels.

import { scaleBox } from './boxes.js';

export const MAX_SIDE = 1280;
export const JPEG_QUALITY = 0.9;

/** The size that fits the long side into maxSide without upscaling. */
export function fitLongSide(width, height, maxSide = MAX_SIDE) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  if (scale === 1) return { width, height };
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** Detections with boxes in a from.width × from.height image, rescaled to to.width × to.height. */
export function scaleDetections(detections, from, to) {
  const sx = to.width / from.width;
  const sy = to.height / from.height;
  return detections.map((d) => ({ ...d, box: scaleBox(d.box, sx, sy, to.width, to.height) }));
}

function canvasOf(width, height) {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(width, height);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

function toJpeg(canvas, quality) {
  if (canvas.convertToBlob) return canvas.convertToBlob({ type: 'image/jpeg', quality });
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the browser could not encode a JPEG'))),
      'image/jpeg', quality);
  });
}

/**
 * source: an upright ImageBitmap (EXIF orientation already applied). Returns {blob, width, height}:
 * a JPEG of the image with its long side at most maxSide.
 */
export async function uprightJpeg(source, maxSide = MAX_SIDE, quality = JPEG_QUALITY) {
  const { width, height } = fitLongSide(source.width, source.height, maxSide);
  const canvas = canvasOf(width, height);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, width, height);
  return { blob: await toJpeg(canvas, quality), width, height };
}
