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
  // the same batch and the two score vectors are averaged, as `build.py evaluate` measured.
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

  async function predict(crops) {
    if (crops.length === 0) return [];
    if (target) crops = crops.map(standardized);
    if (smoothing) crops = crops.map(smoothed);
    const inputs = flip ? [...crops, ...crops.map(mirrored)] : crops;
    const batch = new Float32Array(inputs.length * size * size);
    inputs.forEach((crop, i) => batch.set(crop, i * size * size));
    const output = tf.tidy(() => network.predict(tf.tensor4d(batch, [inputs.length, size, size, 1])));
    const flat = await output.data();
    output.dispose();
    const k = metadata.labels.length;
    const scores = (i) => flat.subarray(i * k, (i + 1) * k);
    return crops.map((_, i) => (flip ? Array.from(scores(i), (p, j) => (p + scores(i + crops.length)[j]) / 2)
      : Array.from(scores(i))));
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
  async function timedPredict(crops) {
    if (timings.firstInferenceMs !== null) return predict(crops);
    const runStarted = performance.now();
    const result = await predict(crops);
    timings.firstInferenceMs ??= performance.now() - runStarted;
    return result;
  }

  // That first run on a blank crop, for when no photo is waiting to do it (`again`: also when a run
  // was made, as after a switch to another backend).
  async function warmUp(again = false) {
    if (again || timings.firstInferenceMs === null) await timedPredict([new Float32Array(size * size).fill(128)]);
  }
  const weights = () => Object.values(network.weights).flat();
  return { metadata, predict: timedPredict, warmUp, weights, timings };
}
