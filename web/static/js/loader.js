// Loads a TF.js graph model only after checking every file against the site's integrity.json
// (SHA-256 of each model file, written when the site was built). A truncated or altered shard
// is refused with a clear message instead of producing wrong predictions.
import { startBackend } from './runtime.js';
import { buildGraphModel } from './copies.js';
import { CodedError } from './errors.js';

const SITE_ROOT = new URL('../../', import.meta.url);
let manifest = null;

// One request for every caller, even those that ask before the first answer arrives.
function integrityManifest() {
  manifest ??= fetchFile(new URL('integrity.json', SITE_ROOT), 'integrity.json').then((response) => {
    if (!response.ok) throw missing('integrity.json', response.status);
    return response.json();
  });
  return manifest;
}

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// A fetch whose network failure (offline, before the page was ever cached) names the file.
async function fetchFile(url, path) {
  try {
    return await fetch(url);
  } catch {
    throw new CodedError('file_unreachable', { path }, `${path} could not be loaded: the site could not be reached`);
  }
}

function missing(path, status) {
  return new CodedError('file_missing', { path, status }, `${path} could not be loaded (${status})`);
}

// The bytes of `url`, or an error naming the file when they are not the ones the site was built with.
export async function verifiedFetch(url) {
  const path = url.href.slice(SITE_ROOT.href.length);
  // The file downloads while the manifest does; nothing is used before its hash is checked.
  const [hashes, response] = await Promise.all([integrityManifest(), fetchFile(url, path)]);
  const expected = hashes[path];
  if (!expected) throw new CodedError('file_unlisted', { path }, `${path} is not listed in integrity.json`);
  if (!response.ok) throw missing(path, response.status);
  const bytes = await response.arrayBuffer();
  if (await sha256Hex(bytes) !== expected) {
    throw new CodedError('file_damaged', { path }, `${path} is damaged or incomplete (checksum mismatch); reload the page`);
  }
  return bytes;
}

// A graph model's files, checked, as TF.js model artifacts (copies.js builds networks from them).
export async function loadVerifiedArtifacts(modelUrl) {
  const spec = JSON.parse(new TextDecoder().decode(await verifiedFetch(modelUrl)));
  const groups = spec.weightsManifest;
  const buffers = await Promise.all(groups.flatMap((g) => g.paths.map((p) => verifiedFetch(new URL(p, modelUrl)))));
  const weightData = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const b of buffers) {
    weightData.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  const artifacts = {
    modelTopology: spec.modelTopology,
    weightSpecs: groups.flatMap((g) => g.weights),
    weightData: weightData.buffer,
    format: spec.format,
    generatedBy: spec.generatedBy,
    convertedBy: spec.convertedBy,
    signature: spec.signature,
    userDefinedMetadata: spec.userDefinedMetadata,
  };
  // Downloading and checking never waited for the runtime; building the network does.
  await startBackend();
  return artifacts;
}

export async function loadVerifiedGraphModel(modelUrl) {
  return buildGraphModel(await loadVerifiedArtifacts(modelUrl));
}
