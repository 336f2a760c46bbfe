// window.facemood: the page's one public object, for embedding and tests.
//
//   await facemood.ready                  -> {backend, labels, loadMs, model: {loadMs, firstInferenceMs}}
//                                            once both networks are loaded and warm (when a photo was
//                                            given first, its own run warms them; firstInferenceMs
//                                            is null until that run is over)
//   await facemood.threads                -> how many threads the runtime uses once the page has
//                                            settled: after the first results it moves to the
//                                            multi-threaded WASM build where the page is cross-origin
//                                            isolated (served with the isolation headers, or from
//                                            the second visit on by sw.js) and the
//                                            machine has cores to spare; 1 otherwise
//   await facemood.classifyFace(src)      -> {scores: {label: p}, label, ms}   (whole image = one face)
//   await facemood.classify(src)          -> {faces: [{box: [x, y, w, h], keypoints, roll, scores, label,
//                                            detection}], ms}
//                                            (every face BlazeFace finds, in reading order: rows from
//                                            the top, left to right; boxes and keypoints in source
//                                            pixels: the eyes (the one on the image's left first), nose
//                                            tip, mouth, ears; roll: degrees the eyes' line leans,
//                                            clockwise on screen; a face leaning facemood.levelFrom (30)
//                                            degrees or more is classified turned upright; options:
//                                            {level: false} classifies
//                                            every crop as it lies, {levelFrom: degrees} turns upright
//                                            the faces leaning that far or more (0: every face),
//                                            {margin} overrides metadata.json's crop margin,
//                                            {range: 'close'|'far'} picks the detector: 'close' (the
//                                            default for a <video>) looks at a quarter of the pixels
//                                            and finds faces that fill a good part of the frame, as
//                                            a webcam sees them; 'far' also finds the small faces of
//                                            group photos. Without `range`, a photo goes to 'far'
//                                            and, when that finds no face, to 'close' as well, first
//                                            as it is, then framed by a border: a tightly cropped
//                                            face is sometimes found only that way, and its box may
//                                            then reach past the photo's edges)
//
// `src`: a URL, <img>, canvas, ImageBitmap, File/Blob, ImageData or a playing <video>.
// Labels, input size, grey conversion and crop margin come from the model's metadata.json.
import { THREADED, moveToRunningBackend, startBackend, startThreadedBackend, tf } from './runtime.js';
import { idle } from './idle.js';
import { loadExpressionModel } from './model.js';
import { centreSquare, greyCrop, toDrawable } from './image.js';
import { faceCrop, loadFaceDetector, readingOrder, roll } from './faces.js';

const MODEL_URL = new URL('../../model/', import.meta.url);
const DETECTOR_URL = new URL('../../detector/blazeface.json', import.meta.url);
const CLOSE_RANGE_DETECTOR_URL = new URL('../../detector/blazeface-front.json', import.meta.url);
// A face leaning this far or further (degrees) has its crop turned so its eyes are level before
// it is classified: FER2013's faces are upright, and a tilted head otherwise reaches the model
// tilted. Below it the model copes (it saw turns of up to 15 degrees in training) and the eyes'
// roll is only good to about 5 degrees, so a face measured as leaning a little may not lean at all.
// bench/tilt.py measured thresholds from 0 to 35 degrees: on average over tilts of 0-45 degrees
// they lie within three faces of 500, and 30 costs upright faces least (0.2-0.4 points at 0
// degrees, against 1.4 at 15) while keeping most of the gain at 45 (about 12 points).
const LEVEL_FROM_DEGREES = 30;
const LEVEL_FROM_RADIANS = (LEVEL_FROM_DEGREES * Math.PI) / 180;
let model = null;
let detector = null;
let closeRangeDetector = null;  // loaded on first use: only the webcam needs it

let waiting = 0;  // photos given and not yet classified

// Both networks downloaded, checked and built: enough to classify. The runtime starts while they
// download; each network is built as soon as the runtime and its own files are there.
const built = Promise.all([startBackend(), loadExpressionModel(MODEL_URL), loadFaceDetector(DETECTOR_URL)])
  .then(([backend, expressionModel, faceDetector]) => {
    model = expressionModel;
    detector = faceDetector;
    const alignment = model.metadata.crop.alignment ?? 'none';
    if (alignment !== 'none') throw new Error(`this page cannot align faces as the model expects (${alignment})`);
    return backend;
  });

// Built and warm. Each network's first run is the slow one; it runs on a blank input now unless a
// photo is already waiting: the photo's own first run does that work, and waiting for a blank run
// first would only delay its result. Between the two the page takes input, so a photo given now
// skips what is left.
const ready = (async () => {
  const started = performance.now();
  const backend = await built;
  for (const network of [detector, model]) {
    await new Promise((resolve) => setTimeout(resolve));
    if (waiting === 0) await network.warmUp();
  }
  return { backend, labels: [...model.metadata.labels], loadMs: performance.now() - started, model: model.timings };
})();

// After the first results, in idle time: the multi-threaded runtime, where it can run (runtime.js).
// A warm photo then takes about a quarter less time: the detector's convolutions are split across
// the cores. The switch itself is synchronous and made while no photo is being classified, so no
// run mixes the two backends. The networks' weights move to the new backend at once, and each
// network makes its slow first run there right away. The old backend is dropped once it holds
// nothing.
const SETTLE_THREADS_MS = 300;
async function moveToThreads() {
  await quiet();
  const count = await startThreadedBackend();
  if (!count) return 1;
  // The build's workers are still starting (and the browser compiling its code) when it resolves:
  // runs made then wait for them, and the networks' first runs there took 60-130 ms tasks where,
  // SETTLE_THREADS_MS later, they stayed under the 50 ms of a long task (traced, 5 loads each).
  await new Promise((resolve) => setTimeout(resolve, SETTLE_THREADS_MS));
  await quiet();
  const single = tf.getBackend();
  await tf.setBackend(THREADED);
  try {
    const networks = [detector, model, await closeRangeDetector?.catch(() => null)].filter(Boolean);
    moveToRunningBackend(networks.flatMap((network) => network.weights()));
    // Each network's first run there is the slow one (new code for the browser to compile, kernels to
    // set up): each in an idle moment of its own, so none makes a long task with another.
    for (const network of networks) {
      await quiet();
      await network.warmUp(true);
    }
  } catch (err) {
    await tf.setBackend(single);
    throw err;
  }
  if (tf.findBackend(single)?.numDataIds() === 0) tf.removeBackend(single);
  return count;
}
// An idle moment with no photo being classified.
async function quiet() {
  do await idle(); while (waiting > 0);
}
// Once the page has its backend for good: the detector's copies for photos either way up (faces.js).
const threads = ready.then(async () => {
  const count = await moveToThreads().catch((err) => {
    console.warn(`staying single-threaded: ${err.message}`);
    return 1;
  });
  await detector.prepare(quiet).catch((err) => console.warn(`detector copies not prepared: ${err.message}`));
  return count;
}, () => 1);

function named(probabilities) {
  const labels = model.metadata.labels;
  const scores = Object.fromEntries(labels.map((label, i) => [label, probabilities[i]]));
  const best = probabilities.indexOf(Math.max(...probabilities));
  return { scores, label: labels[best] };
}

async function withImage(src, work) {
  // The photo decodes (off the main thread) while the networks may still be loading; `ms` counts
  // from when the networks were built, or from the call when they already were.
  waiting += 1;
  try {
    const decoding = toDrawable(src);
    try {
      await built;
    } catch (err) {
      decoding.then((drawable) => drawable.close(), () => {});
      throw err;
    }
    const started = performance.now();
    const drawable = await decoding;
    try {
      const result = await work(drawable);
      return { ...result, ms: performance.now() - started };
    } finally {
      drawable.close();
    }
  } finally {
    waiting -= 1;
  }
}

function crop(drawable, box, lean = 0) {
  const { size } = model.metadata.input;
  return greyCrop(drawable, box, size, model.metadata.input.luma_weights, lean);
}

async function classifyFace(src) {
  return withImage(src, async (drawable) => {
    const [probabilities] = await model.predict([crop(drawable, centreSquare(drawable.width, drawable.height))]);
    return named(probabilities);
  });
}

function detectorFor(range) {
  if (range === 'far') return detector;
  closeRangeDetector ??= loadFaceDetector(CLOSE_RANGE_DETECTOR_URL).catch((err) => {
    closeRangeDetector = null;  // the next frame tries again
    throw err;
  });
  return closeRangeDetector;
}

// The faces in a photo or frame. Of tightly cropped faces (1000 FER2013 PublicTest images scaled
// to 192x192, bench/crop_margin.py) the far-range detector finds 86 % and the two together 92 %;
// with the close-range one looking a third time at the photo framed by a border (a fifth of its
// longer side on every side), so that a face cut by the photo's edges has room around it, 99 %.
// Each look after the first runs only when no face was found yet: a few milliseconds each.
const BORDER = 0.2;
async function findFaces(src, drawable, range) {
  const isVideo = typeof HTMLVideoElement !== 'undefined' && src instanceof HTMLVideoElement;
  const first = range ?? (isVideo ? 'close' : 'far');
  const found = await (await detectorFor(first)).detect(drawable);
  if (found.length > 0 || range !== undefined || first === 'close') return readingOrder(found);
  const close = await detectorFor('close');
  const closeFound = await close.detect(drawable);
  return readingOrder(closeFound.length > 0 ? closeFound : await close.detect(drawable, BORDER));
}

async function classify(src, { margin, range, level = true, levelFrom } = {}) {
  if (range !== undefined && range !== 'close' && range !== 'far') throw new TypeError(`range must be 'close' or 'far', not ${range}`);
  if (levelFrom !== undefined && !(levelFrom >= 0)) throw new TypeError(`levelFrom must be degrees, 0 or more, not ${levelFrom}`);
  const levelFromRadians = levelFrom === undefined ? LEVEL_FROM_RADIANS : (levelFrom * Math.PI) / 180;
  return withImage(src, async (drawable) => {
    const found = await findFaces(src, drawable, range);
    margin = margin ?? model.metadata.crop.margin;
    const leans = found.map(({ keypoints }) => roll(keypoints));
    const turn = (lean) => (level && Math.abs(lean) >= levelFromRadians ? lean : 0);
    const all = await model.predict(found.map(({ box }, i) => crop(drawable, faceCrop(box, margin), turn(leans[i]))));
    // Back to the source's pixels when a huge photo was scaled down for the work.
    const scaleY = drawable.scaleY ?? drawable.scale;
    const toSource = (v, i) => Math.round(v / (i % 2 === 0 ? drawable.scale : scaleY));  // x, y, x, y...
    const faces = found.map(({ box, score, keypoints }, i) => ({
      box: box.map(toSource),
      keypoints: keypoints.map((point) => point.map(toSource)),
      roll: Math.round((leans[i] * 180) / Math.PI),
      detection: score,
      ...named(all[i]),
    }));
    return { faces, width: toSource(drawable.width, 0), height: toSource(drawable.height, 1) };
  });
}

export const facemood = Object.freeze({
  ready,
  threads,
  classify,
  classifyFace,
  levelFrom: LEVEL_FROM_DEGREES,
  get metadata() { return model ? model.metadata : null; },
});
window.facemood = facemood;
