// Where the faces are: BlazeFace (TF.js graph models; the 256x256 back-camera model from
// @vladmandic/human for photos, the 128x128 front-camera model for the webcam), run on the image
// letterboxed into its square input. Boxes come back in source pixels.
import { tf } from './runtime.js';
import { loadVerifiedGraphModel } from './loader.js';

const MIN_SCORE = 0.6;      // below this BlazeFace mostly fires on textures, not faces
const MAX_OVERLAP = 0.3;    // IoU above which two boxes are the same face
const OUTPUTS = ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0'];

// BlazeFace's anchors: one grid per output stride, `perCell` anchors per cell, centres in pixels.
// Both BlazeFace models have two output grids, 16x16 and 8x8 cells, whatever their input size
// (256 back-camera model: strides 16 and 32; 128 front-camera model: 8 and 16).
function anchorCentres(inputSize, strides = [inputSize / 16, inputSize / 8], perCell = [2, 6]) {
  const centres = [];
  strides.forEach((stride, s) => {
    const cells = Math.ceil(inputSize / stride);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
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

export async function loadFaceDetector(modelUrl) {
  const network = await loadVerifiedGraphModel(modelUrl);
  const size = network.inputs[0].shape[1];
  const anchors = anchorCentres(size);
  let canvas = null;

  // Faces in `drawable` as [{box: [x, y, w, h], score}], largest score first.
  async function detect(drawable) {
    const scale = size / Math.max(drawable.width, drawable.height);
    const w = drawable.width * scale;
    const h = drawable.height * scale;
    const dx = (size - w) / 2;
    const dy = (size - h) / 2;
    if (!canvas) {
      canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(size, size) : document.createElement('canvas');
      canvas.width = size;
      canvas.height = size;
    }
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, size, size);
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(drawable.image, dx, dy, w, h);
    const pixels = ctx.getImageData(0, 0, size, size);
    const outputs = tf.tidy(() => {
      const rgb = tf.cast(tf.browser.fromPixels(pixels), 'float32');
      const x = tf.expandDims(tf.sub(tf.div(rgb, 127.5), 1), 0);  // [-1, 1], as BlazeFace was trained
      return network.execute(x, OUTPUTS);
    });
    const [logits16, logits32, boxes16, boxes32] = await Promise.all(outputs.map((t) => t.data()));
    tf.dispose(outputs);
    const logits = [...logits16, ...logits32];
    const regress = (i) => (i < logits16.length ? boxes16.subarray(i * 16, i * 16 + 4)
      : boxes32.subarray((i - logits16.length) * 16, (i - logits16.length) * 16 + 4));
    const candidates = [];
    logits.forEach((logit, i) => {
      const score = 1 / (1 + Math.exp(-logit));
      if (score < MIN_SCORE) return;
      const [ox, oy, bw, bh] = regress(i);
      const cx = anchors[i][0] + ox;
      const cy = anchors[i][1] + oy;
      const box = [(cx - bw / 2 - dx) / scale, (cy - bh / 2 - dy) / scale, bw / scale, bh / scale];
      candidates.push({ box, score });
    });
    return suppressOverlaps(candidates);
  }

  let warm = false;  // after the first run, the slow one (it compiles kernels and allocates memory)
  return {
    detect: (drawable) => detect(drawable).then((faces) => { warm = true; return faces; }),
    // That first run on a blank square, for when no photo is waiting to do it.
    async warmUp() {
      if (warm) return;
      await detect({ image: new OffscreenCanvas(size, size), width: size, height: size });
      warm = true;
    },
  };
}

// The square crop the expression model wants around a detected face: the box's longer side plus
// `margin` of it on every side (metadata.json's crop.margin, matched to how training faces were framed).
export function faceCrop(box, margin) {
  const [x, y, w, h] = box;
  const side = Math.max(w, h) * (1 + 2 * margin);
  return [x + w / 2 - side / 2, y + h / 2 - side / 2, side, side];
}
