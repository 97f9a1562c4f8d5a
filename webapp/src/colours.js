// One colour per class, the same for its boxes and its legend entry: a fixed palette indexed by label_id
// (ids start at 1, docs/metadata.md), so a class keeps its colour from frame to frame and between models
// with the same label map. Every colour carries white label text.
export const PALETTE = ['#ff7f0e', '#1f77b4', '#d62728', '#9467bd', '#e377c2', '#8c564b', '#17becf', '#2ca02c'];

/** The colour of the class with this label_id; ids past the palette's end wrap around. */
export function colourFor(labelId) {
  const id = Math.trunc(Number(labelId));
  if (!Number.isFinite(id)) return PALETTE[0];
  const n = PALETTE.length;
  return PALETTE[(((id - 1) % n) + n) % n];
}
