// window.facemood: the page's one public object, for embedding and tests.
//
//   await facemood.ready                  -> {backend, labels, loadMs} once the model is loaded and warm
//   await facemood.classifyFace(src)      -> {scores: {label: p}, label, ms}   (whole image = one face)
//   await facemood.classify(src)          -> {faces: [{box: [x, y, w, h], scores, label, detection}], ms}
//                                            (every face BlazeFace finds; boxes in source pixels;
//                                            options {margin} overrides metadata.json's crop margin)
//
// `src`: a URL, <img>, canvas, ImageBitmap, File/Blob, ImageData or a playing <video>.
// Labels, input size, grey conversion and crop margin come from the model's metadata.json.
import { startBackend } from './runtime.js';
import { loadExpressionModel } from './model.js';
import { centreSquare, greyCrop, toDrawable } from './image.js';
import { faceCrop, loadFaceDetector } from './faces.js';

const MODEL_URL = new URL('../../model/', import.meta.url);
const DETECTOR_URL = new URL('../../detector/blazeface.json', import.meta.url);
let model = null;
let detector = null;

const ready = (async () => {
  const started = performance.now();
  const backend = await startBackend();
  // Both networks download and warm up side by side.
  [model, detector] = await Promise.all([loadExpressionModel(MODEL_URL), loadFaceDetector(DETECTOR_URL)]);
  const alignment = model.metadata.crop.alignment ?? 'none';
  if (alignment !== 'none') throw new Error(`this page cannot align faces as the model expects (${alignment})`);
  return { backend, labels: [...model.metadata.labels], loadMs: performance.now() - started };
})();

function named(probabilities) {
  const labels = model.metadata.labels;
  const scores = Object.fromEntries(labels.map((label, i) => [label, probabilities[i]]));
  const best = probabilities.indexOf(Math.max(...probabilities));
  return { scores, label: labels[best] };
}

async function withImage(src, work) {
  await ready;
  const started = performance.now();
  const drawable = await toDrawable(src);
  try {
    const result = await work(drawable);
    return { ...result, ms: performance.now() - started };
  } finally {
    drawable.close();
  }
}

function crop(drawable, box) {
  const { size } = model.metadata.input;
  return greyCrop(drawable, box, size, model.metadata.input.luma_weights);
}

async function classifyFace(src) {
  return withImage(src, async (drawable) => {
    const [probabilities] = await model.predict([crop(drawable, centreSquare(drawable.width, drawable.height))]);
    return named(probabilities);
  });
}

async function classify(src, { margin } = {}) {
  return withImage(src, async (drawable) => {
    const found = await detector.detect(drawable);
    margin = margin ?? model.metadata.crop.margin;
    const all = await model.predict(found.map(({ box }) => crop(drawable, faceCrop(box, margin))));
    // Back to the source's pixels when a huge photo was scaled down for the work.
    const toSource = (v) => Math.round(v / drawable.scale);
    const faces = found.map(({ box, score }, i) => ({ box: box.map(toSource), detection: score, ...named(all[i]) }));
    return { faces, width: toSource(drawable.width), height: toSource(drawable.height) };
  });
}

export const facemood = Object.freeze({
  ready,
  classify,
  classifyFace,
  get metadata() { return model ? model.metadata : null; },
});
window.facemood = facemood;
