// Nucleus annotator: the Segment page's correction mode (Streamlit custom component v2).
//
// Python sends `data`: the display image and the label image as PNG data URLs (label
// id = R + 256 * G), their ids, the image size, the nucleus count, the colour palette,
// whether undo / redo are possible and `seq`, the last gesture Python has applied.
// The canvas shows the image at any zoom with the nuclei drawn here from the labels
// (filled or outlined, one colour per id); each finished gesture goes back as ONE
// trigger value "gesture": {tool, points: [[row, col], ...], radius, seq}, in image
// pixel coordinates (pixel centres at whole numbers). Python applies it and sends back
// only the boxes the edit changed ("patch": {base_id, boxes: [{row, col, height, width,
// labels}]}), written into the labels shown here when they are the patch's base. The state
// value "image_id" tells Python which image is shown, so the image is sent once; the
// state value "labels_have" ({have, n}) asks for the labels when this element missed
// some (mounted afresh, or a rerun's data never came). One state object per mounted
// element (WeakMap), so a rerun with new data keeps the zoom, the tool and the selection.
// What each tool does with a press, a drag and a release is in TOOLS, one entry a tool.

/* global applyPatch, asPoints, boxes, grow, overlayPixels -- from labels.js, joined first */

const instances = new WeakMap();
const ZOOM_STEP = 1.25;
const CLICK_SLOP = 4; // screen pixels a press may move and still be a click

export default function (component) {
  const { parentElement, data, setTriggerValue, setStateValue } = component;
  let state = instances.get(parentElement);
  if (!state) {
    state = mount(parentElement);
    instances.set(parentElement, state);
    window.addEventListener("beforeunload", (event) => warnIfUnsaved(state, event));
  }
  state.send = setTriggerValue;
  state.setState = setStateValue;
  update(state, data || {});
}

// Leaving the page with corrections not saved as a training image: the browser asks first
// (they are kept as a draft on the server too, and come back with the image).
function warnIfUnsaved(state, event) {
  if (state.data && state.data.unsaved && document.contains(state.element)) {
    event.preventDefault();
    event.returnValue = "";
  }
}

// ----------------------------------------------------------------------------- set-up

function mount(root) {
  const element = root.querySelector(".annotator");
  const canvas = element.querySelector("canvas.view");
  const state = {
    root,
    element,
    canvas,
    stage: element.querySelector(".stage"),
    context: canvas.getContext("2d"),
    send: null,
    data: {},
    image: null, // ImageBitmap of the display image
    imageId: null,
    labels: null, // Uint16Array, row-major, width * height
    labelsId: null,
    width: 0,
    height: 0,
    boxes: null, // Int32Array [minX, minY, maxX, maxY] per id
    overlay: null, // canvas width x height with the nuclei drawn
    marks: new Map(), // id -> small canvas with that nucleus highlighted
    view: { scale: 1, x: 0, y: 0, fitted: false },
    tool: "outline",
    radius: 6,
    showOverlay: true,
    filled: true,
    hover: 0,
    selected: new Set(),
    path: [], // the gesture being drawn, image coordinates [x, y]
    drag: null,
    spaceHeld: false,
    pointer: null, // last pointer position on the canvas, CSS pixels
    seq: 0,
    pending: 0, // seq of the gesture sent and not yet applied
    frame: 0,
  };
  bindControls(state);
  bindPointer(state);
  bindKeys(state);
  new ResizeObserver(() => resize(state)).observe(state.stage);
  setTool(state, state.tool);
  return state;
}

function bindControls(state) {
  const { element } = state;
  element.querySelectorAll("[data-tool]").forEach((button) => {
    button.addEventListener("click", () => setTool(state, button.dataset.tool));
  });
  element.querySelectorAll("[data-action]").forEach((button) => {
    button.addEventListener("click", () => action(state, button.dataset.action));
  });
  const radius = element.querySelector('[data-input="radius"]');
  radius.addEventListener("input", () => {
    state.radius = Number(radius.value);
    show(state, "radius", String(state.radius));
    draw(state);
  });
  element.querySelector('[data-input="overlay"]').addEventListener("change", (event) => {
    state.showOverlay = event.target.checked;
    draw(state);
  });
  element.querySelector('[data-input="filled"]').addEventListener("change", (event) => {
    state.filled = event.target.checked;
    renderOverlay(state);
    draw(state);
  });
}

function setTool(state, tool) {
  state.tool = tool;
  state.path = [];
  state.drag = null;
  if (tool !== "merge") state.selected.clear();
  state.element.dataset.tool = tool;
  state.element.querySelectorAll("[data-tool]").forEach((button) => {
    button.classList.toggle("active", button.dataset.tool === tool);
  });
  refreshButtons(state);
  hint(state);
  draw(state);
}

function action(state, name) {
  if (name === "undo" || name === "redo") {
    if (state.data[name === "undo" ? "can_undo" : "can_redo"]) emit(state, { tool: name });
  } else if (name === "merge") {
    if (state.selected.size >= 2) {
      const points = [...state.selected].map((id) => centrePoint(state, id));
      state.selected.clear();
      emit(state, { tool: "merge", points });
    }
  } else if (name === "zoom-in" || name === "zoom-out") {
    const rect = state.canvas.getBoundingClientRect();
    zoomAt(state, rect.width / 2, rect.height / 2, name === "zoom-in" ? ZOOM_STEP : 1 / ZOOM_STEP);
  } else if (name === "fit") {
    fit(state);
  }
}

// ----------------------------------------------------------------------------- data

async function update(state, data) {
  state.data = data;
  if (Number.isInteger(data.seq) && data.seq > state.seq) state.seq = data.seq;
  const applied = Number.isInteger(data.seq) && data.seq >= state.pending;
  if (state.pending && (applied || data.labels_id !== state.labelsId)) {
    state.pending = 0; // applied, or refused, or new labels came another way
    state.path = [];
  }
  show(state, "count", `${data.count ?? 0} nuclei`);
  refreshButtons(state);
  hint(state);
  try {
    if (data.image && data.image_id !== state.imageId) {
      state.imageId = data.image_id;
      const image = await bitmap(data.image);
      if (state.imageId !== data.image_id) return; // a newer image arrived meanwhile
      state.image = image;
      state.width = data.width;
      state.height = data.height;
      state.view.fitted = false;
      state.selected.clear();
      resize(state); // the stage takes the image's shape
      state.setState("image_id", data.image_id); // Python stops sending it
    } else if (!data.image && data.image_id !== state.imageId) {
      state.setState("image_id", null); // mounted afresh without the image: ask for it
    }
    if (data.labels && data.labels_id !== state.labelsId) {
      state.labelsId = data.labels_id;
      const labels = await decodeLabels(data.labels, data.width, data.height);
      if (state.labelsId !== data.labels_id) return;
      state.labels = labels;
      labelsChanged(state, null);
    } else if (data.patch && data.patch.base_id === state.labelsId && state.labels) {
      const parts = data.patch.boxes;
      state.labelsId = data.labels_id;
      const crops = await Promise.all(
        parts.map((part) => decodeLabels(part.labels, part.width, part.height))
      );
      if (state.labelsId !== data.labels_id) return;
      parts.forEach((part, index) => applyPatch(state.labels, state.width, crops[index], part));
      labelsChanged(
        state,
        parts.map((part) => grow(part, 1, state.width, state.height))
      );
    } else if (data.labels_id && data.labels_id !== state.labelsId) {
      // Labels missed: say which ones are here (none), Python sends the rest.
      state.setState("labels_have", { have: state.labelsId, n: `${Date.now()}-${Math.random()}` });
    }
  } catch (error) {
    show(state, "state", `Cannot show the image: ${error}`);
    return;
  }
  state.element.dataset.count = String(data.count ?? 0);
  state.element.dataset.labelsId = String(state.labelsId ?? "");
  state.element.dataset.ready = state.image && state.labels ? "true" : "false";
  if (!state.view.fitted) fit(state);
  draw(state);
}

async function bitmap(url) {
  const blob = await (await fetch(url)).blob();
  return createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
}

async function decodeLabels(url, width, height) {
  const image = await bitmap(url);
  const scratch = document.createElement("canvas");
  scratch.width = width;
  scratch.height = height;
  const context = scratch.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, width, height).data;
  const labels = new Uint16Array(width * height);
  for (let i = 0, j = 0; i < labels.length; i += 1, j += 4) {
    labels[i] = pixels[j] | (pixels[j + 1] << 8);
  }
  return labels;
}

// The labels changed (everywhere, or inside `regions`, each [x0, y0, x1, y1) with the
// ends excluded): the nuclei's boxes, their highlights, the selection and the overlay follow.
function labelsChanged(state, regions) {
  state.boxes = boxes(state.labels, state.width, state.height);
  state.marks.clear();
  for (const id of [...state.selected]) if (!hasNucleus(state, id)) state.selected.delete(id);
  if (regions) for (const region of regions) renderOverlay(state, region);
  else renderOverlay(state);
}

function hasNucleus(state, id) {
  return state.boxes && 4 * id < state.boxes.length && state.boxes[4 * id] >= 0;
}

function labelAt(state, x, y) {
  const col = Math.floor(x);
  const row = Math.floor(y);
  if (!state.labels || col < 0 || row < 0 || col >= state.width || row >= state.height) return 0;
  return state.labels[row * state.width + col];
}

function centrePoint(state, id) {
  // A pixel of nucleus `id` (its first one in its middle row), as [row, col].
  const k = 4 * id;
  const row = Math.floor((state.boxes[k + 1] + state.boxes[k + 3]) / 2);
  for (let col = state.boxes[k]; col <= state.boxes[k + 2]; col += 1) {
    if (state.labels[row * state.width + col] === id) return [row, col];
  }
  for (let y = state.boxes[k + 1]; y <= state.boxes[k + 3]; y += 1) {
    for (let col = state.boxes[k]; col <= state.boxes[k + 2]; col += 1) {
      if (state.labels[y * state.width + col] === id) return [y, col];
    }
  }
  return [row, state.boxes[k]];
}

// Draw the nuclei into the overlay canvas: everywhere, or only inside `region`.
function renderOverlay(state, region = null) {
  const { labels, width, height } = state;
  if (!labels) return;
  let canvas = state.overlay;
  if (!canvas || canvas.width !== width || canvas.height !== height || !region) {
    canvas = canvas || document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    region = [0, 0, width, height];
  }
  const [x0, y0, x1, y1] = region;
  if (x1 <= x0 || y1 <= y0) return;
  const palette = state.data.palette || [[230, 159, 0]];
  const pixels = overlayPixels(labels, width, height, region, palette, state.filled ? 100 : 0);
  canvas.getContext("2d").putImageData(new ImageData(pixels, x1 - x0, y1 - y0), x0, y0);
  state.overlay = canvas;
}

function mark(state, id) {
  // A canvas over nucleus `id`'s bounding box: the nucleus in white, half transparent.
  if (state.marks.has(id)) return state.marks.get(id);
  const k = 4 * id;
  const [x0, y0, x1, y1] = state.boxes.subarray(k, k + 4);
  const canvas = document.createElement("canvas");
  canvas.width = x1 - x0 + 1;
  canvas.height = y1 - y0 + 1;
  const context = canvas.getContext("2d");
  const picture = context.createImageData(canvas.width, canvas.height);
  for (let y = y0; y <= y1; y += 1) {
    for (let x = x0; x <= x1; x += 1) {
      if (state.labels[y * state.width + x] !== id) continue;
      const j = 4 * ((y - y0) * canvas.width + (x - x0));
      picture.data.fill(255, j, j + 3);
      picture.data[j + 3] = 150;
    }
  }
  context.putImageData(picture, 0, 0);
  const entry = { canvas, x: x0, y: y0 };
  state.marks.set(id, entry);
  return entry;
}

// ----------------------------------------------------------------------------- view

function resize(state) {
  const width = state.stage.clientWidth;
  if (!width) return;
  const aspect = state.height && state.width ? state.height / state.width : 0.75;
  const height = Math.round(Math.min(760, Math.max(320, width * aspect)));
  state.stage.style.height = `${height}px`;
  const ratio = window.devicePixelRatio || 1;
  state.canvas.width = Math.round(width * ratio);
  state.canvas.height = Math.round(height * ratio);
  if (!state.view.fitted) fit(state);
  draw(state);
}

function fit(state) {
  const rect = state.canvas.getBoundingClientRect();
  if (!state.width || !rect.width) return;
  if (state.stage.style.height === "") resize(state);
  const scale = Math.min(rect.width / state.width, rect.height / state.height);
  state.view = {
    scale,
    x: (rect.width - state.width * scale) / 2,
    y: (rect.height - state.height * scale) / 2,
    fitted: true,
  };
  draw(state);
}

function zoomAt(state, sx, sy, factor) {
  const view = state.view;
  const scale = Math.min(64, Math.max(0.02, view.scale * factor));
  view.x = sx - ((sx - view.x) * scale) / view.scale;
  view.y = sy - ((sy - view.y) * scale) / view.scale;
  view.scale = scale;
  draw(state);
}

function toImage(state, sx, sy) {
  return [(sx - state.view.x) / state.view.scale, (sy - state.view.y) / state.view.scale];
}

function draw(state) {
  if (state.frame) return;
  state.frame = requestAnimationFrame(() => {
    state.frame = 0;
    paint(state);
  });
}

function paint(state) {
  const { context, canvas, view } = state;
  const ratio = canvas.width / Math.max(1, canvas.getBoundingClientRect().width);
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.image) return;
  context.setTransform(view.scale * ratio, 0, 0, view.scale * ratio, view.x * ratio, view.y * ratio);
  context.imageSmoothingEnabled = view.scale < 1;
  context.drawImage(state.image, 0, 0);
  if (state.showOverlay && state.overlay) {
    context.imageSmoothingEnabled = false;
    context.drawImage(state.overlay, 0, 0);
  }
  if (state.labels) {
    const shown = new Set(state.selected);
    if (state.hover && state.tool !== "pan") shown.add(state.hover);
    for (const id of shown) {
      if (!hasNucleus(state, id)) continue;
      const entry = mark(state, id);
      context.drawImage(entry.canvas, entry.x, entry.y);
    }
  }
  paintGesture(state, ratio);
}

function paintGesture(state, ratio) {
  const { context, view, path, tool } = state;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  const screen = path.map(([x, y]) => [x * view.scale + view.x, y * view.scale + view.y]);
  if (isBrush(tool)) {
    const width = Math.max(1, 2 * state.radius * view.scale);
    if (screen.length) {
      context.strokeStyle = tool === "paint" ? "rgba(0, 220, 255, 0.55)" : "rgba(255, 60, 60, 0.55)";
      context.lineWidth = width;
      context.lineCap = "round";
      context.lineJoin = "round";
      polyline(context, screen.length === 1 ? [screen[0], screen[0]] : screen);
      context.stroke();
    }
    if (state.pointer) {
      context.strokeStyle = "white";
      context.lineWidth = 1;
      context.beginPath();
      context.arc(state.pointer[0], state.pointer[1], width / 2, 0, 2 * Math.PI);
      context.stroke();
    }
    return;
  }
  if (!screen.length) return;
  context.lineWidth = 2;
  context.strokeStyle = tool === "split" ? "#ff3b3b" : "#00e5ff";
  context.setLineDash(state.pending ? [6, 4] : []);
  const open = tool === "outline" && state.pointer && !state.pending && !state.drag;
  polyline(context, open ? [...screen, state.pointer] : screen);
  if (tool === "outline" && (state.pending || !open)) context.closePath();
  context.stroke();
  context.setLineDash([]);
  if (tool === "outline") {
    context.fillStyle = "#00e5ff";
    for (const [x, y] of screen) context.fillRect(x - 2, y - 2, 4, 4);
  }
}

function polyline(context, points) {
  context.beginPath();
  points.forEach(([x, y], index) => (index ? context.lineTo(x, y) : context.moveTo(x, y)));
}

// ----------------------------------------------------------------------------- tools

// One entry a tool: `hint` (shown under the canvas), `brush` (a stroke of `radius`),
// `press(state, point, drag)` at the pointer's press, `drags` (a moving press adds points
// to the path) and `release(state, point, drag, screen)` at its release; `point` is in
// image coordinates [x, y], `screen` in CSS pixels of the canvas.
const TOOLS = {
  pan: { hint: "Drag to move; wheel or +/- to zoom." },
  delete: {
    hint: "Click a nucleus to delete it.",
    release(state, point, drag) {
      if (!drag.moved && labelAt(state, ...point)) {
        emit(state, { tool: "delete", points: asPoints([point]) });
      }
    },
  },
  merge: {
    hint: "Click nuclei to select them, then Merge.",
    release(state, point, drag) {
      const id = drag.moved ? 0 : labelAt(state, ...point);
      if (id) state.selected.has(id) ? state.selected.delete(id) : state.selected.add(id);
      refreshButtons(state);
    },
  },
  outline: {
    hint: "Click corners, double-click or Enter to close; or press and draw. Esc cancels.",
    drags: true,
    press(state, point, drag) {
      drag.start = state.path.length; // freehand starts here if the press moves
      state.path.push(point);
    },
    release(state, point, drag, screen) {
      if (drag.moved) {
        state.path = state.path.slice(drag.start); // a freehand outline replaces the clicks
        finishOutline(state);
      } else if (state.path.length >= 4 && nearFirst(state, ...screen)) {
        state.path.pop();
        finishOutline(state);
      } else {
        dropRepeat(state);
      }
    },
  },
  split: {
    hint: "Draw a line across one nucleus.",
    drags: true,
    press: startPath,
    release(state) {
      if (state.path.length >= 2) emit(state, { tool: "split", points: asPoints(state.path) });
      else state.path = [];
    },
  },
  paint: {
    hint: "Paint onto the nucleus where the stroke starts (a new one on background).",
    brush: true,
    drags: true,
    press: startPath,
    release: emitStroke,
  },
  erase: {
    hint: "Erase pixels of the nucleus where the stroke starts.",
    brush: true,
    drags: true,
    press: startPath,
    release: emitStroke,
  },
};

function isBrush(tool) {
  return Boolean(TOOLS[tool] && TOOLS[tool].brush);
}

function startPath(state, point) {
  state.path = [point];
}

function emitStroke(state) {
  emit(state, { tool: state.tool, points: asPoints(state.path) });
}

function emit(state, gesture) {
  if (!state.send) return;
  state.seq += 1;
  state.pending = state.seq;
  const message = { ...gesture, seq: state.seq };
  if (isBrush(gesture.tool)) message.radius = state.radius;
  show(state, "state", "Applying…");
  state.send("gesture", message);
  draw(state);
}

function finishOutline(state) {
  if (state.path.length >= 3) emit(state, { tool: "outline", points: asPoints(state.path) });
  else state.path = [];
  draw(state);
}

function bindPointer(state) {
  const { canvas, element } = state;
  const position = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  };

  canvas.addEventListener("pointerdown", (event) => {
    element.focus({ preventScroll: true });
    if (state.pending) return;
    const [sx, sy] = position(event);
    canvas.setPointerCapture(event.pointerId);
    const panning = event.button === 1 || state.spaceHeld || state.tool === "pan";
    if (event.button !== 0 && !panning) return;
    event.preventDefault();
    state.drag = { sx, sy, x0: state.view.x, y0: state.view.y, moved: false, panning };
    if (panning) {
      element.classList.add("panning");
      return;
    }
    const tool = TOOLS[state.tool];
    if (tool.press) tool.press(state, toImage(state, sx, sy), state.drag);
    draw(state);
  });

  canvas.addEventListener("pointermove", (event) => {
    const [sx, sy] = position(event);
    state.pointer = [sx, sy];
    const drag = state.drag;
    if (drag) {
      if (Math.hypot(sx - drag.sx, sy - drag.sy) > CLICK_SLOP) drag.moved = true;
      if (drag.panning) {
        state.view.x = drag.x0 + sx - drag.sx;
        state.view.y = drag.y0 + sy - drag.sy;
        state.view.fitted = false;
      } else if (drag.moved && TOOLS[state.tool].drags) {
        const point = toImage(state, sx, sy);
        const last = state.path[state.path.length - 1];
        if (!last || Math.hypot(point[0] - last[0], point[1] - last[1]) * state.view.scale > 2) {
          state.path.push(point);
        }
      }
    }
    const [x, y] = toImage(state, sx, sy);
    const id = labelAt(state, x, y);
    if (id !== state.hover) state.hover = id;
    hint(state);
    draw(state);
  });

  canvas.addEventListener("pointerup", (event) => {
    const drag = state.drag;
    state.drag = null;
    element.classList.remove("panning");
    if (!drag || drag.panning) return;
    const screen = position(event);
    const tool = TOOLS[state.tool];
    if (tool.release) tool.release(state, toImage(state, ...screen), drag, screen);
    draw(state);
  });
  canvas.addEventListener("pointercancel", () => {
    state.drag = null;
    element.classList.remove("panning");
  });
  canvas.addEventListener("pointerleave", () => {
    state.pointer = null;
    state.hover = 0;
    draw(state);
  });
  canvas.addEventListener("dblclick", (event) => {
    if (state.tool !== "outline" || state.pending) return;
    event.preventDefault();
    finishOutline(state);
  });
  canvas.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const [sx, sy] = position(event);
      zoomAt(state, sx, sy, event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP);
    },
    { passive: false }
  );
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
}

function nearFirst(state, sx, sy) {
  const [x, y] = state.path[0];
  const fx = x * state.view.scale + state.view.x;
  const fy = y * state.view.scale + state.view.y;
  return Math.hypot(sx - fx, sy - fy) <= 2 * CLICK_SLOP;
}

function dropRepeat(state) {
  // The clicks of a double-click add the same corner twice: keep one.
  const path = state.path;
  if (path.length < 2) return;
  const [a, b] = [path[path.length - 1], path[path.length - 2]];
  if (Math.hypot(a[0] - b[0], a[1] - b[1]) * state.view.scale <= CLICK_SLOP) path.pop();
}

function bindKeys(state) {
  const { element } = state;
  element.addEventListener("keydown", (event) => {
    const key = event.key;
    const control = event.ctrlKey || event.metaKey;
    if (control && key.toLowerCase() === "z") {
      action(state, event.shiftKey ? "redo" : "undo");
    } else if (control && key.toLowerCase() === "y") {
      action(state, "redo");
    } else if (key === " ") {
      state.spaceHeld = true;
      element.classList.add("panning");
    } else if (key === "Enter") {
      if (state.tool === "outline") finishOutline(state);
      if (state.tool === "merge") action(state, "merge");
    } else if (key === "Escape") {
      state.pending = 0; // stop waiting for an answer that may not come
      state.path = [];
      state.selected.clear();
      refreshButtons(state);
      draw(state);
    } else if (key === "Backspace" && state.tool === "outline") {
      state.path.pop();
      draw(state);
    } else if (key === "+" || key === "=") {
      action(state, "zoom-in");
    } else if (key === "-") {
      action(state, "zoom-out");
    } else if (key === "0") {
      fit(state);
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  });
  element.addEventListener("keyup", (event) => {
    if (event.key === " ") {
      state.spaceHeld = false;
      element.classList.remove("panning");
    }
  });
}

// ----------------------------------------------------------------------------- status

function show(state, name, text) {
  const target = state.element.querySelector(`[data-show="${name}"]`);
  if (target) target.textContent = text;
}

function refreshButtons(state) {
  const { element, data } = state;
  element.querySelector('[data-action="undo"]').disabled = !data.can_undo;
  element.querySelector('[data-action="redo"]').disabled = !data.can_redo;
  const merge = element.querySelector('[data-action="merge"]');
  merge.disabled = state.selected.size < 2;
  merge.textContent = `Merge ${state.selected.size} selected`;
  if (!state.pending) show(state, "state", "");
}

function hint(state) {
  const under = state.hover ? `nucleus ${state.hover} · ` : "";
  show(state, "hint", under + (TOOLS[state.tool] ? TOOLS[state.tool].hint : ""));
}
