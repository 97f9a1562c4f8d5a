// Boxes, labels and scores on the overlay canvas. The canvas has the frame's own pixel size and the
// same CSS box as the video, so boxes stay aligned at every display size and orientation. Each class has
// its colour from colours.js, the same as in the legend.
import { colourFor } from './colours.js';

export function sizeOverlay(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
}

export function drawDetections(canvas, detections, source = null) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (source) ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(canvas.width / 320));
  ctx.font = `${Math.max(12, Math.round(canvas.width / 45))}px system-ui, sans-serif`;
  ctx.textBaseline = 'bottom';
  for (const d of detections) {
    const [x0, y0, x1, y1] = d.box;
    const colour = colourFor(d.label_id);
    ctx.strokeStyle = colour;
    ctx.lineWidth = line;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const text = `${d.label} ${(d.score * 100).toFixed(0)}%`;
    const w = ctx.measureText(text).width + 6;
    const h = parseInt(ctx.font, 10) + 4;
    const ty = y0 - h < 0 ? y0 + h : y0;
    ctx.fillStyle = colour;
    ctx.fillRect(x0, ty - h, w, h);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x0 + 3, ty - 2);
  }
}
