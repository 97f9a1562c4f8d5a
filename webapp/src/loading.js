// The model download in bytes. tfjs's onProgress counts finished weight requests (half for the responses,
// half for their bodies), so the page counts the shard bytes itself as they arrive, against the total
// that model.json's weightsManifest implies.

const DTYPE_BYTES = { float32: 4, int32: 4, uint32: 4, float16: 2, int16: 2, uint16: 2, int8: 1, uint8: 1, bool: 1,
  complex64: 8 };

/** Bytes of all weight shards that model.json's weightsManifest describes: elements × bytes per element
 * (a quantized weight's quantization.dtype); null if any weight's size is not fixed (string tensors). */
export function weightBytes(modelJson) {
  let total = 0;
  for (const group of modelJson?.weightsManifest ?? []) {
    for (const weight of group.weights ?? []) {
      const size = DTYPE_BYTES[weight.quantization?.dtype ?? weight.dtype];
      if (!size) return null;
      total += (weight.shape ?? []).reduce((n, d) => n * d, 1) * size;
    }
  }
  return total;
}

function megabytes(bytes, total) {
  return (bytes / 1e6).toFixed(total < 1e6 ? 2 : 1);
}

/** The status line while loading: bytes where the total is known, tfjs's fraction otherwise; once every
 * shard is in, the warm-up run. */
export function loadingText({ loaded = 0, total = null, fraction = 0 }) {
  if (fraction >= 1) return 'Preparing the model…';
  if (total) return `Loading the model… ${megabytes(Math.min(loaded, total), total)} of ${megabytes(total, total)} MB`;
  return `Loading the model… ${Math.round(fraction * 100)}%`;
}

/**
 * A fetch for tf.loadGraphModel's fetchFunc that reports each chunk of a weight shard (the requests tfjs
 * marks isBinary) to onBytes(n) as the body is read; other requests and failed ones pass through unchanged.
 */
export function countingFetch(onBytes, fetchImpl = (url, init) => fetch(url, init)) {
  return async (url, init, options) => {
    const response = await fetchImpl(url, init);
    if (!options?.isBinary || !response.ok || !response.body) return response;
    const reader = response.body.getReader();
    const body = new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        onBytes(value.byteLength);
        controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}
