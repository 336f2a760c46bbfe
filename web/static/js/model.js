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
  async function predict(crops) {
    if (crops.length === 0) return [];
    const batch = new Float32Array(crops.length * size * size);
    crops.forEach((crop, i) => batch.set(crop, i * size * size));
    const output = tf.tidy(() => network.predict(tf.tensor4d(batch, [crops.length, size, size, 1])));
    const flat = await output.data();
    output.dispose();
    const k = metadata.labels.length;
    return crops.map((_, i) => Array.from(flat.subarray(i * k, (i + 1) * k)));
  }

  const loaded = performance.now();
  // The first run compiles kernels and allocates memory; do it now, not on the user's photo.
  await predict([new Float32Array(size * size).fill(128)]);
  const timings = { loadMs: loaded - started, firstInferenceMs: performance.now() - loaded };
  return { metadata, predict, timings };
}
