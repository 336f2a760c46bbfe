// The expression model: metadata.json says what it expects, model.json + shards are the network.
import { tf } from './runtime.js';
import { loadVerifiedGraphModel, verifiedFetch } from './loader.js';

export async function loadExpressionModel(baseUrl) {
  const started = performance.now();
  const [metadataBytes, network] = await Promise.all([
    verifiedFetch(new URL('metadata.json', baseUrl)),
    loadVerifiedGraphModel(new URL('model.json', baseUrl)),
  ]);
  const metadata = JSON.parse(new TextDecoder().decode(metadataBytes));
  const size = metadata.input.size;

  // Class probabilities for each crop (Float32Array of size*size grey values, 0-255).
  // With test-time flipping (metadata inference.test_time_flip), each crop's mirror image runs in
  // the same batch and the two score vectors are averaged, as `build.py evaluate` measured (only
  // for the crops the network is unsure of when the metadata records a margin: predict below).
  const flip = Boolean(metadata.inference?.test_time_flip);
  // With inference.standardize, a crop whose mean grey level or contrast lies outside the middle
  // 80 % of the training faces' is first brought to the nearest edge of that range, so a dim or
  // washed-out photo looks to the network like the faces it learned from (convert/graph_model.py's
  // page_input does the same in Python).
  const target = metadata.inference?.standardize;
  const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));

  function standardized(crop) {
    let sum = 0;
    for (const v of crop) sum += v;
    const mean = sum / crop.length;
    let squares = 0;
    for (const v of crop) squares += (v - mean) * (v - mean);
    const std = Math.max(Math.sqrt(squares / crop.length), target.min_std);
    const gain = clamp(std, target.std) / std;
    const centre = clamp(mean, target.mean);
    return crop.map((v) => Math.min(255, Math.max(0, (v - mean) * gain + centre)));
  }

  // With inference.smoothing (a weight w), each crop is then softened with the kernel (w, 1 - 2w, w)
  // along both axes, edge pixels repeated: the network learned from resampled, slightly soft faces.
  const smoothing = metadata.inference?.smoothing ?? 0;

  function smoothed(crop) {
    const centre = 1 - 2 * smoothing;
    const rows = new Float32Array(crop.length);
    for (let y = 0; y < size; y++) {
      const row = y * size;
      for (let x = 0; x < size; x++) {
        const left = crop[row + Math.max(x - 1, 0)], right = crop[row + Math.min(x + 1, size - 1)];
        rows[row + x] = smoothing * (left + right) + centre * crop[row + x];
      }
    }
    const out = new Float32Array(crop.length);
    for (let y = 0; y < size; y++) {
      const up = Math.max(y - 1, 0) * size, down = Math.min(y + 1, size - 1) * size;
      for (let x = 0; x < size; x++) {
        out[y * size + x] = smoothing * (rows[up + x] + rows[down + x]) + centre * rows[y * size + x];
      }
    }
    return out;
  }

  // With inference.flip_when_unsure, only the crops whose first pass puts its two likeliest classes
  // closer than `margin` run their mirror image, in a second batch (convert/selective_flip.py): a
  // sure face costs one pass.
  const unsureBelow = flip ? metadata.inference.flip_when_unsure?.margin : undefined;

  // One batch through the network: a score array per crop.
  async function scoresOf(crops) {
    const batch = new Float32Array(crops.length * size * size);
    crops.forEach((crop, i) => batch.set(crop, i * size * size));
    const output = tf.tidy(() => network.predict(tf.tensor4d(batch, [crops.length, size, size, 1])));
    const flat = await output.data();
    output.dispose();
    const k = metadata.labels.length;
    return crops.map((_, i) => Array.from(flat.subarray(i * k, (i + 1) * k)));
  }

  const mean = (a, b) => a.map((p, j) => (p + b[j]) / 2);
  function topTwoMargin(scores) {
    const [first, second] = [...scores].sort((a, b) => b - a);
    return first - second;
  }

  async function predict(crops) {
    if (crops.length === 0) return [];
    if (target) crops = crops.map(standardized);
    if (smoothing) crops = crops.map(smoothed);
    if (!flip) return scoresOf(crops);
    if (unsureBelow === undefined) {  // every crop with its mirror image, in one batch
      const scores = await scoresOf([...crops, ...crops.map(mirrored)]);
      return crops.map((_, i) => mean(scores[i], scores[i + crops.length]));
    }
    const first = await scoresOf(crops);
    const unsure = crops.map((_, i) => i).filter((i) => topTwoMargin(first[i]) < unsureBelow);
    if (unsure.length === 0) return first;
    const mirror = await scoresOf(unsure.map((i) => mirrored(crops[i])));
    unsure.forEach((i, n) => { first[i] = mean(first[i], mirror[n]); });
    return first;
  }

  function mirrored(crop) {
    const out = new Float32Array(crop.length);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) out[y * size + x] = crop[y * size + size - 1 - x];
    }
    return out;
  }

  const timings = { loadMs: performance.now() - started, firstInferenceMs: null };

  // The first run is the slow one (it compiles kernels and allocates memory): timed apart.
  async function timed(run, crops) {
    if (timings.firstInferenceMs !== null) return run(crops);
    const runStarted = performance.now();
    const result = await run(crops);
    timings.firstInferenceMs ??= performance.now() - runStarted;
    return result;
  }

  // That first run on a blank crop, for when no photo is waiting to do it (`again`: also when a run
  // was made, as after a switch to another backend). One run of the batch a face makes: with a
  // margin for flipping, one crop (a mirror image, if any, is another run of one).
  async function warmUp(again = false) {
    const blank = [new Float32Array(size * size).fill(128)];
    if (again || timings.firstInferenceMs === null) await timed(unsureBelow === undefined ? predict : scoresOf, blank);
  }
  const weights = () => Object.values(network.weights).flat();
  return { metadata, predict: (crops) => timed(predict, crops), warmUp, weights, timings };
}
