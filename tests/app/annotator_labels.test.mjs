// Node tests (node --test) of the annotator's pure functions (ui/annotator/frontend/labels.js):
// the boxes of the nuclei, a patch written into the labels, the overlay redrawn in the
// patched box only, and gesture points. Run by tests/app/test_annotator_js.py.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyPatch,
  asPoints,
  boxes,
  grow,
  overlayPixels,
} from "../../ui/annotator/frontend/labels.js";

const PALETTE = [
  [230, 159, 0],
  [86, 180, 233],
];

// A width x height label image with rectangles [id, x0, y0, x1, y1) drawn in order.
function labelImage(width, height, rectangles) {
  const labels = new Uint16Array(width * height);
  for (const [id, x0, y0, x1, y1] of rectangles) {
    for (let y = y0; y < y1; y += 1) labels.fill(id, y * width + x0, y * width + x1);
  }
  return labels;
}

function crop(labels, width, patch) {
  const out = new Uint16Array(patch.width * patch.height);
  for (let row = 0; row < patch.height; row += 1) {
    const start = (patch.row + row) * width + patch.col;
    out.set(labels.subarray(start, start + patch.width), row * patch.width);
  }
  return out;
}

test("boxes gives each nucleus its extent and -1 to missing ids", () => {
  const labels = labelImage(10, 8, [
    [1, 1, 1, 4, 3],
    [3, 5, 2, 9, 7],
  ]);
  const found = boxes(labels, 10, 8);
  assert.deepEqual([...found.subarray(4, 8)], [1, 1, 3, 2]);
  assert.deepEqual([...found.subarray(8, 12)], [-1, -1, -1, -1]);
  assert.deepEqual([...found.subarray(12, 16)], [5, 2, 8, 6]);
});

test("a patch writes its box and nothing else", () => {
  const width = 12;
  const before = labelImage(width, 9, [[1, 0, 0, 12, 9]]);
  const after = labelImage(width, 9, [
    [1, 0, 0, 12, 9],
    [2, 3, 4, 7, 6],
  ]);
  const patch = { row: 4, col: 3, height: 2, width: 4 };
  const shown = before.slice();
  applyPatch(shown, width, crop(after, width, patch), patch);
  assert.deepEqual(shown, after);
});

test("the overlay redrawn in the grown box equals the whole overlay redrawn", () => {
  const [width, height] = [16, 12];
  const before = labelImage(width, height, [
    [1, 1, 1, 6, 6],
    [2, 8, 2, 14, 10],
  ]);
  const after = labelImage(width, height, [
    [1, 1, 1, 6, 6],
    [2, 8, 2, 14, 10],
    [1, 6, 1, 8, 6], // nucleus 1 painted up to nucleus 2: both outlines change
  ]);
  const patch = { row: 1, col: 6, height: 5, width: 2 };
  const whole = [0, 0, width, height];
  const shown = overlayPixels(before, width, height, whole, PALETTE, 100);
  const labels = before.slice();
  applyPatch(labels, width, crop(after, width, patch), patch);
  const [x0, y0, x1, y1] = grow(patch, 1, width, height);
  const redrawn = overlayPixels(labels, width, height, [x0, y0, x1, y1], PALETTE, 100);
  for (let y = y0; y < y1; y += 1) {
    const row = redrawn.subarray(4 * (y - y0) * (x1 - x0), 4 * (y - y0 + 1) * (x1 - x0));
    shown.set(row, 4 * (y * width + x0));
  }
  assert.deepEqual(shown, overlayPixels(after, width, height, whole, PALETTE, 100));
  assert.notDeepEqual(shown, overlayPixels(before, width, height, whole, PALETTE, 100));
});

test("outlines are opaque, insides take the fill and background stays clear", () => {
  const labels = labelImage(5, 5, [[2, 0, 0, 5, 5]]);
  const pixels = overlayPixels(labels, 5, 5, [0, 0, 5, 5], PALETTE, 0);
  const alpha = (x, y) => pixels[4 * (y * 5 + x) + 3];
  assert.equal(alpha(0, 0), 255);
  assert.equal(alpha(2, 2), 0); // inside, not filled
  assert.deepEqual([...pixels.subarray(0, 3)], PALETTE[1]);
  const filled = overlayPixels(labels, 5, 5, [0, 0, 5, 5], PALETTE, 100);
  assert.equal(filled[4 * (2 * 5 + 2) + 3], 100);
});

test("grow stays inside the image and points become pixel centres", () => {
  assert.deepEqual(grow({ row: 0, col: 3, height: 2, width: 9 }, 1, 10, 4), [2, 0, 10, 3]);
  assert.deepEqual(asPoints([[0.5, 0.5], [10, 2.25]]), [[0, 0], [1.75, 9.5]]);
});
