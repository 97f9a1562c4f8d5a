// Frame → model input with TF.js ops (no canvas), as docs/metadata.md specifies: letterbox at the
// top-left (or stretch), per-channel normalisation, padding that holds `pad_value` after normalisation.
import { fitTransform } from './postprocess.js';

/** frame: tf.Tensor3D [H, W, 3] (int32/uint8/float, 0..255). Returns a float32 [1, inH, inW, 3]. Call inside tf.tidy. */
export function toModelInput(tf, frame, metadata) {
  const [, inH, inW] = metadata.input.shape;
  const [h, w] = frame.shape;
  const { mean, std } = metadata.input.normalization;
  const { newH, newW } = fitTransform(metadata, w, h);
  const resized = tf.image.resizeBilinear(frame.toFloat(), [newH, newW], false, true);
  const normalized = resized.sub(tf.tensor1d(mean)).div(tf.tensor1d(std));
  const [rh, rw] = normalized.shape;
  const padded = tf.pad(normalized, [[0, inH - rh], [0, inW - rw], [0, 0]], metadata.input.pad_value ?? 0);
  return padded.expandDims(0);
}
