// face-api (@vladmandic/face-api) doing what the facemood page does, for bench/speed.py:
// a picked photo -> every face found (tiny face detector) -> expression per face -> a result card.
// ?backend=wasm|webgl picks the TF.js backend; ?inputSize= the detector's resolution (416 default).
import * as faceapi from './face-api.esm.js';

const params = new URLSearchParams(location.search);
const BACKEND = params.get('backend') || 'wasm';
const options = new faceapi.TinyFaceDetectorOptions({ inputSize: Number(params.get('inputSize') || 416), scoreThreshold: 0.5 });
const status = document.getElementById('status');

const ready = (async () => {
  const started = performance.now();
  // The WASM binaries sit in wasm/ beside this page (copied from node_modules); nothing from a CDN.
  if (BACKEND === 'wasm') faceapi.tf.setWasmPaths(new URL('wasm/', location.href).href);
  if (!(await faceapi.tf.setBackend(BACKEND))) throw new Error(`TF.js backend ${BACKEND} unavailable`);
  await faceapi.tf.ready();
  // Both networks load side by side, as facemood loads its two.
  await Promise.all([faceapi.nets.tinyFaceDetector.loadFromUri('model'), faceapi.nets.faceExpressionNet.loadFromUri('model')]);
  return { backend: faceapi.tf.getBackend(), loadMs: performance.now() - started };
})();
ready.then(({ backend }) => { status.textContent = `ready (${backend})`; document.body.dataset.ready = 'true'; },
  (err) => { status.textContent = `failed: ${err.message}`; document.body.dataset.failed = err.message; });

async function classify(src) {
  await ready;
  const started = performance.now();
  const found = await faceapi.detectAllFaces(src, options).withFaceExpressions();
  const faces = found.map(({ detection, expressions }) => {
    const [label] = Object.entries(expressions).sort((a, b) => b[1] - a[1])[0];
    const { x, y, width, height } = detection.box;
    return { box: [x, y, width, height], label, detection: detection.score };
  });
  return { faces, ms: performance.now() - started };
}

// face-api takes <img>, <canvas> or <video>; a decoded photo goes in as a canvas.
async function canvasOf(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas;
}

function showResult(file, result) {
  const card = document.createElement('article');
  card.className = 'result';
  card.dataset.faces = String(result.faces.length);
  const img = document.createElement('img');
  img.src = URL.createObjectURL(file);
  const text = document.createElement('p');
  text.textContent = result.faces.map((f) => f.label).join(', ') || 'no face';
  card.append(img, text);
  document.getElementById('results').prepend(card);
}

document.getElementById('file-input').addEventListener('change', async (event) => {
  await ready;
  for (const file of [...event.target.files]) showResult(file, await classify(await canvasOf(file)));
});

// Frames per second over `ms` of webcam frames, each detected, classified and drawn, one at a time.
async function webcamFps(ms = 4000, warmupMs = 1000) {
  await ready;
  const video = document.getElementById('camera-video');
  const overlay = document.getElementById('camera-overlay');
  video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  await video.play();
  const start = performance.now();
  let frames = 0;
  await new Promise((resolve) => {
    const loop = async () => {
      const { faces } = await classify(video);
      overlay.width = video.videoWidth;
      overlay.height = video.videoHeight;
      const ctx = overlay.getContext('2d');
      for (const { box } of faces) ctx.strokeRect(...box);
      const now = performance.now();
      if (now - start > warmupMs) frames++;
      if (now - start > warmupMs + ms) resolve();
      else requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  });
  video.srcObject.getTracks().forEach((t) => t.stop());
  return (frames * 1000) / ms;
}

window.harness = { ready, classify, webcamFps, numTensors: () => faceapi.tf.memory().numTensors };
