// Steady-state speed of the camera/video loop: the median inference time of the last frames, leaving out
// the first ones (new input sizes compile shaders and allocate textures there).

export function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Frame times of one loop: the first `skip` are left out, the median is over the last `window`, and
 * there is none before `min` frames have counted. */
export class FrameTimes {
  constructor({ skip = 5, window = 30, min = 5 } = {}) {
    Object.assign(this, { skip, window, min, seen: 0, times: [] });
  }

  add(ms) {
    this.seen += 1;
    if (this.seen <= this.skip) return;
    this.times.push(ms);
    if (this.times.length > this.window) this.times.shift();
  }

  get steady() {
    return this.times.length >= this.min ? median(this.times) : null;
  }
}
