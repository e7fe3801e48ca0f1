// Label images in the browser, as pure functions over typed arrays (no DOM): the boxes of
// the nuclei, a patch written into the labels, the overlay's pixels, and gesture points.
// ui/annotator/__init__.py joins this file before annotator.js into the component's one
// module; tests/app/annotator_labels.test.mjs runs them in node.

// Write a patch's crop (Uint16Array, patch.width x patch.height) into `labels` at
// (patch.row, patch.col).
export function applyPatch(labels, width, crop, patch) {
  for (let row = 0; row < patch.height; row += 1) {
    const start = row * patch.width;
    labels.set(crop.subarray(start, start + patch.width), (patch.row + row) * width + patch.col);
  }
}

// A patch's box as [x0, y0, x1, y1) grown by `margin` pixels, inside the image: the
// outlines of the pixels just outside it may change too.
export function grow(patch, margin, width, height) {
  return [
    Math.max(0, patch.col - margin),
    Math.max(0, patch.row - margin),
    Math.min(width, patch.col + patch.width + margin),
    Math.min(height, patch.row + patch.height + margin),
  ];
}

// [minX, minY, maxX, maxY] of every id (-1 where an id has no pixel), Int32Array.
export function boxes(labels, width, height) {
  let largest = 0;
  for (let i = 0; i < labels.length; i += 1) if (labels[i] > largest) largest = labels[i];
  const result = new Int32Array(4 * (largest + 1)).fill(-1);
  for (let y = 0, i = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1, i += 1) {
      const id = labels[i];
      if (!id) continue;
      const k = 4 * id;
      if (result[k] < 0) {
        result[k] = x;
        result[k + 1] = y;
        result[k + 2] = x;
        result[k + 3] = y;
      } else {
        if (x < result[k]) result[k] = x;
        if (x > result[k + 2]) result[k + 2] = x;
        result[k + 3] = y;
      }
    }
  }
  return result;
}

export function isEdge(labels, width, height, i, x, y) {
  const id = labels[i];
  return (
    x === 0 ||
    y === 0 ||
    x === width - 1 ||
    y === height - 1 ||
    labels[i - 1] !== id ||
    labels[i + 1] !== id ||
    labels[i - width] !== id ||
    labels[i + width] !== id
  );
}

// RGBA pixels of the overlay inside `region` [x0, y0, x1, y1): each nucleus in its
// palette colour, opaque on its outline, `fill` (0-255) inside; background transparent.
export function overlayPixels(labels, width, height, region, palette, fill) {
  const [x0, y0, x1, y1] = region;
  const pixels = new Uint8ClampedArray(4 * (x1 - x0) * (y1 - y0));
  for (let y = y0, j = 0; y < y1; y += 1) {
    for (let x = x0, i = y * width + x0; x < x1; x += 1, i += 1, j += 4) {
      const id = labels[i];
      if (!id) continue;
      const edge = isEdge(labels, width, height, i, x, y);
      if (!edge && !fill) continue;
      const colour = palette[(id - 1) % palette.length];
      pixels[j] = colour[0];
      pixels[j + 1] = colour[1];
      pixels[j + 2] = colour[2];
      pixels[j + 3] = edge ? 255 : fill;
    }
  }
  return pixels;
}

// Image coordinates [x, y] (pixel corners at whole numbers) -> [row, col] (centres).
export function asPoints(path) {
  const round = (value) => Math.round(value * 100) / 100;
  return path.map(([x, y]) => [round(y - 0.5), round(x - 0.5)]);
}
