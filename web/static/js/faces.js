// Where the faces are: BlazeFace (TF.js graph models; the 256x256 back-camera model from
// @vladmandic/human for photos, the 128x128 front-camera model for the webcam and for a second
// look at a photo in which the first finds no face: facemood.js chooses), run on the image
// scaled so its longer side is the model's trained size. web/detector.py opens the shipped models
// to any input size, so a 4:3 photo runs at 256x192, not letterboxed into 256x256 (a quarter of
// the work spent on black bars); a model with a fixed square input is letterboxed as before.
// Boxes come back in source pixels.
import { tf } from './runtime.js';
import { idle } from './idle.js';
import { makeCanvas } from './image.js';
import { loadVerifiedArtifacts } from './loader.js';
import { buildGraphModel, networkCopies } from './copies.js';

const MIN_SCORE = 0.6;      // below this BlazeFace mostly fires on textures, not faces
const MAX_OVERLAP = 0.3;    // IoU above which two boxes are the same face
const OUTPUTS = ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0'];
// Copies of the network, one per input shape, for this many shapes (copies.js says why).
const SHAPES_KEPT = 4;

// BlazeFace's anchors: one grid per output stride, `perCell` anchors per cell, centres in pixels,
// row by row as the network flattens its grids. Both models have two grids with strides of a 16th
// and an 8th of their trained size (256 back-camera model: 16 and 32; 128 front-camera model: 8
// and 16): at that size, 16x16 and 8x8 cells.
function anchorCentres(width, height, strides, perCell = [2, 6]) {
  const centres = [];
  strides.forEach((stride, s) => {
    for (let y = 0; y < Math.ceil(height / stride); y++) {
      for (let x = 0; x < Math.ceil(width / stride); x++) {
        for (let n = 0; n < perCell[s]; n++) centres.push([(x + 0.5) * stride, (y + 0.5) * stride]);
      }
    }
  });
  return centres;
}

function iou(a, b) {
  const x1 = Math.max(a[0], b[0]);
  const y1 = Math.max(a[1], b[1]);
  const x2 = Math.min(a[0] + a[2], b[0] + b[2]);
  const y2 = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

function suppressOverlaps(candidates) {
  const kept = [];
  for (const c of candidates.sort((a, b) => b.score - a.score)) {
    if (kept.every((k) => iou(k.box, c.box) <= MAX_OVERLAP)) kept.push(c);
  }
  return kept;
}

// `side`: the longer side of the network's input for a model opened to any size (default: the size
// it was trained at). Smaller is faster, but a face must then be larger to be found
// (bench/detector_scale.py measures how much); the page keeps the default.
export async function loadFaceDetector(modelUrl, { side } = {}) {
  const artifacts = await loadVerifiedArtifacts(modelUrl);
  const first = buildGraphModel(artifacts);
  const fixedSide = first.inputs[0].shape[1];  // -1 once opened to any size
  const size = first.metadata?.trained_input_size ?? fixedSide;
  const strides = [size / 16, size / 8];
  const longer = fixedSide > 0 ? size : side ?? size;
  const anchorsByShape = new Map();
  const copies = networkCopies(artifacts, SHAPES_KEPT, first);
  const networkFor = (width, height) => copies.get(`${width}x${height}`);
  let canvas = null;

  // The network's input for a width x height image: the longer side at `longer`, the shorter one
  // rounded up to whole cells of the coarser grid (so anchors sit where training put them).
  function inputShape(width, height) {
    if (fixedSide > 0) return [size, size];
    const side = (v) => Math.min(longer, Math.ceil((v * longer) / Math.max(width, height) / strides[1]) * strides[1]);
    return [side(width), side(height)];
  }

  // The network's outputs for `rgb` (width x height).
  function run(rgb, width, height) {
    const network = networkFor(width, height);  // outside tidy(), which would dispose a new copy's weights
    return tf.tidy(() => network.execute(tf.tensor4d(rgb, [1, height, width, 3]), OUTPUTS));
  }

  // Faces in `drawable` as [{box: [x, y, w, h], score, keypoints: [[x, y] x 6]}], largest score first.
  // With a `border` (a share of the image's longer side), the network sees the image framed by a
  // band that wide on every side: a face that fills the image has room around it. Boxes may then
  // reach past the image's edges.
  async function detect(drawable, border = 0) {
    const pad = border * Math.max(drawable.width, drawable.height);
    const [inputWidth, inputHeight] = inputShape(drawable.width + 2 * pad, drawable.height + 2 * pad);
    const scale = longer / (Math.max(drawable.width, drawable.height) + 2 * pad);
    const w = drawable.width * scale;
    const h = drawable.height * scale;
    const dx = (inputWidth - w) / 2;
    const dy = (inputHeight - h) / 2;
    const key = `${inputWidth}x${inputHeight}`;
    if (!anchorsByShape.has(key)) anchorsByShape.set(key, anchorCentres(inputWidth, inputHeight, strides));
    const anchors = anchorsByShape.get(key);
    canvas ??= makeCanvas(1, 1);
    if (canvas.width !== inputWidth || canvas.height !== inputHeight) {
      canvas.width = inputWidth;
      canvas.height = inputHeight;
    }
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    // A border is mid-grey: of 300 tightly cropped faces the close-range detector found 99 % framed
    // in grey, 97 % in black (the letterbox's colour, kept as the detector has always seen it).
    ctx.fillStyle = border > 0 ? '#808080' : '#000';
    ctx.fillRect(0, 0, inputWidth, inputHeight);
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(drawable.image, dx, dy, w, h);
    const { data } = ctx.getImageData(0, 0, inputWidth, inputHeight);
    // RGBA bytes to RGB in [-1, 1], as BlazeFace was trained: one pass here instead of four
    // tensor operations.
    const rgb = new Float32Array(inputWidth * inputHeight * 3);
    for (let i = 0, j = 0; i < data.length; i += 4, j += 3) {
      rgb[j] = data[i] / 127.5 - 1;
      rgb[j + 1] = data[i + 1] / 127.5 - 1;
      rgb[j + 2] = data[i + 2] / 127.5 - 1;
    }
    const outputs = run(rgb, inputWidth, inputHeight);
    const [logits16, logits32, boxes16, boxes32] = await Promise.all(outputs.map((t) => t.data()));
    tf.dispose(outputs);
    const logits = [...logits16, ...logits32];
    // Per anchor 16 numbers: the box (centre offset, width, height), then six keypoints as
    // offsets from the anchor: the eyes, the nose tip, the mouth and the two ear tragions.
    const regress = (i) => (i < logits16.length ? boxes16.subarray(i * 16, i * 16 + 16)
      : boxes32.subarray((i - logits16.length) * 16, (i - logits16.length) * 16 + 16));
    const candidates = [];
    logits.forEach((logit, i) => {
      const score = 1 / (1 + Math.exp(-logit));
      if (score < MIN_SCORE) return;
      const values = regress(i);
      const [ox, oy, bw, bh] = values;
      const cx = anchors[i][0] + ox;
      const cy = anchors[i][1] + oy;
      const box = [(cx - bw / 2 - dx) / scale, (cy - bh / 2 - dy) / scale, bw / scale, bh / scale];
      const keypoints = [];
      for (let k = 4; k < 16; k += 2) {
        keypoints.push([(anchors[i][0] + values[k] - dx) / scale, (anchors[i][1] + values[k + 1] - dy) / scale]);
      }
      candidates.push({ box, score, keypoints });
    });
    return suppressOverlaps(candidates);
  }

  // A run on zeros, for the work a network's first run at a shape does (compiling kernels, packing
  // weights, setting each layer up), not for its answer.
  function runBlank(network, width, height) {
    tf.dispose(tf.tidy(() => network.execute(tf.tensor4d(new Float32Array(width * height * 3), [1, height, width, 3]), OUTPUTS)));
  }

  // The copy for width x height set up, in two tasks with `pause` between them: first a run on a
  // small input, which does most of that work for a fraction of the time, then one at the shape.
  // Neither holds the page for long.
  async function warmCopy(width, height, pause) {
    if (fixedSide < 0) {
      runBlank(networkFor(width, height), 2 * strides[1], 2 * strides[1]);
      await pause();
    }
    runBlank(networkFor(width, height), width, height);
  }

  let warm = false;  // after the first run, the slow one (it compiles kernels and allocates memory)
  return {
    weights: () => copies.all().flatMap((network) => Object.values(network.weights).flat()),
    detect: (drawable, border) => detect(drawable, border).then((faces) => { warm = true; return faces; }),
    // That first run on a blank image, for when no photo is waiting to do it; 4:3 landscape, the
    // shape most camera photos have. `again`: also when runs were made (after a switch to another
    // backend): then every copy is set up again, each in tasks of its own (warmCopy).
    async warmUp(again = false) {
      if (warm && !again) return;
      if (again && copies.keys().length > 0) {
        for (const key of copies.keys()) {
          const [width, height] = key.split('x').map(Number);
          await warmCopy(width, height, idle);
          await idle();
        }
        return;
      }
      const blank = makeCanvas(size, (size * 3) / 4);
      await detect({ image: blank, width: blank.width, height: blank.height });
      warm = true;
    },
    // Copies for camera photos both ways up (4:3 landscape and portrait), set up ahead, with
    // `pause` (an idle moment) before each task: so the first photo of such a shape does not wait
    // for that work.
    async prepare(pause = idle) {
      for (const [width, height] of [inputShape(4, 3), inputShape(3, 4)]) {
        if (copies.has(`${width}x${height}`)) continue;
        await pause();
        await warmCopy(width, height, pause);
      }
    },
  };
}

// Faces in the order people read a photo: rows from the top, each row left to right. Taken from the
// top down, a face joins the current row while its centre lies above the row's lowest edge so far,
// so the heads of one row of people, never quite level, stay together.
export function readingOrder(faces) {
  const rows = [];
  let bottom = -Infinity;
  for (const face of [...faces].sort((a, b) => a.box[1] - b.box[1])) {
    const [, y, , h] = face.box;
    if (y + h / 2 <= bottom) {
      rows.at(-1).push(face);
      bottom = Math.max(bottom, y + h);
    } else {
      rows.push([face]);
      bottom = y + h;
    }
  }
  return rows.flatMap((row) => row.sort((a, b) => a.box[0] - b.box[0]));
}

// How far a face leans to one side: the angle (radians, clockwise on screen) of the line from
// the eye on the image's left to the other. BlazeFace's first keypoint is the person's right eye,
// which faces the camera on the image's left.
export function roll(keypoints) {
  const [[x0, y0], [x1, y1]] = keypoints;
  return Math.atan2(y1 - y0, x1 - x0);
}

// The square crop the expression model wants around a detected face: the box's longer side plus
// `margin` of it on every side (metadata.json's crop.margin, matched to how training faces were framed).
export function faceCrop(box, margin) {
  const [x, y, w, h] = box;
  const side = Math.max(w, h) * (1 + 2 * margin);
  return [x + w / 2 - side / 2, y + h / 2 - side / 2, side, side];
}
