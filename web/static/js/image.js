// Turns whatever the caller has (URL, <img>, canvas, ImageBitmap, File/Blob, ImageData, <video>)
// into something drawable, and cuts grey face crops out of it the way the model was trained.

import { CodedError } from './errors.js';

// Photos larger than this (on their longer side) are scaled down once, right after decoding:
// faces stay far above the detector's resolution and a 48 MP photo stops costing 190 MB per copy.
const MAX_SIDE = 2048;

// {image, width, height, scale, scaleY, close}: `image` is drawable, `width` x `height` its size,
// and `scale` its width over the source's (1 unless a huge photo was scaled down), `scaleY` its
// height's when it differs.
export async function toDrawable(src) {
  if (typeof src === 'string' || src instanceof URL) {
    const response = await fetch(src);
    if (!response.ok) throw new Error(`could not fetch ${src} (${response.status})`);
    return fromBlob(await response.blob());
  }
  if (typeof Blob !== 'undefined' && src instanceof Blob) return fromBlob(src);
  if (typeof HTMLImageElement !== 'undefined' && src instanceof HTMLImageElement) {
    if (!src.complete || src.naturalWidth === 0) await src.decode();
    return { image: src, width: src.naturalWidth, height: src.naturalHeight, scale: 1, close() {} };
  }
  if (typeof HTMLVideoElement !== 'undefined' && src instanceof HTMLVideoElement) {
    // One snapshot of the current frame, converted to RGB once (off the main thread): detection
    // and every crop then read the same frame, and no drawImage converts the video again.
    const frame = await createImageBitmap(src);
    return { image: frame, width: frame.width, height: frame.height, scale: 1, close: () => frame.close() };
  }
  if (typeof ImageData !== 'undefined' && src instanceof ImageData) {
    const canvas = makeCanvas(src.width, src.height);
    canvas.getContext('2d').putImageData(src, 0, 0);
    return { image: canvas, width: src.width, height: src.height, scale: 1, close() {} };
  }
  if (isCanvasLike(src)) return { image: src, width: src.width, height: src.height, scale: 1, close() {} };
  throw new TypeError('unsupported image source: give a URL, <img>, canvas, ImageBitmap, File/Blob or ImageData');
}

async function fromBlob(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    // createImageBitmap reads no SVG: an <img> does (and may read what else it refuses).
    const element = blob.size > 0 ? await loadedElement(blob) : null;
    if (element) return fromElement(element, blob);
    // The browser says no more than that it failed: an empty file is told apart; a damaged file and
    // a format this browser lacks read alike.
    if (blob.size === 0) throw new CodedError('empty_file', {}, 'the file is empty');
    if (!blob.type) throw new CodedError('cannot_decode_file', {}, 'this file could not be read as an image');
    if (!blob.type.startsWith('image/')) throw new CodedError('not_image', { kind: blob.type }, `this file is not an image (${blob.type})`);
    throw new CodedError('cannot_decode', { kind: blob.type },
      `this file could not be read as ${blob.type}: it is damaged, or this browser does not read that format`);
  }
  const { width, height } = bitmap;  // a closed bitmap's size reads 0
  const side = Math.max(width, height);
  if (side > MAX_SIDE) {
    // Decoding and this resize both run off the main thread, so the page stays responsive.
    const scale = MAX_SIDE / side;
    // At least a pixel each way: a strip thousands of times longer than wide stays an image.
    const smaller = await createImageBitmap(bitmap, {
      resizeWidth: Math.max(1, Math.round(width * scale)), resizeHeight: Math.max(1, Math.round(height * scale)),
      resizeQuality: 'high',
    }).catch((err) => {  // out of memory, most likely
      throw new CodedError('cannot_scale_down', { width, height }, `could not scale down a ${width}x${height} photo: ${err.message}`);
    }).finally(() => bitmap.close());
    // Each axis its own scale: rounding makes them differ a little, and one for both would give a
    // 5184x3456 photo's height as 3455.
    return { image: smaller, width: smaller.width, height: smaller.height, scale: smaller.width / width,
      scaleY: smaller.height / height, close: () => smaller.close() };
  }
  return { image: bitmap, width: bitmap.width, height: bitmap.height, scale: 1, close: () => bitmap.close() };
}

// `blob` loaded in an <img> (with a size), or null where it cannot be (not an image, or no DOM here).
async function loadedElement(blob) {
  if (typeof Image === 'undefined') return null;
  const url = URL.createObjectURL(blob);
  const element = new Image();
  try {
    await new Promise((resolve, reject) => {
      element.onload = resolve;
      element.onerror = reject;
      element.src = url;
    });
    return element.naturalWidth > 0 && element.naturalHeight > 0 ? element : null;
  } catch {
    return null;
  } finally {
    URL.revokeObjectURL(url);  // a loaded <img> keeps what it read
  }
}

// A loaded <img> drawn on a canvas of at most MAX_SIDE. A raster image larger than that which
// createImageBitmap could not read is taken to be too large to decode whole, and said so: drawn, it
// could come out blank.
function fromElement(element, blob) {
  const width = element.naturalWidth;
  const height = element.naturalHeight;
  const side = Math.max(width, height);
  if (side > MAX_SIDE && !/svg/i.test(blob.type)) {
    throw new CodedError('cannot_scale_down', { width, height }, `could not scale down a ${width}x${height} photo`);
  }
  const scale = Math.min(1, MAX_SIDE / side);
  const canvas = makeCanvas(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)));
  canvas.getContext('2d').drawImage(element, 0, 0, canvas.width, canvas.height);
  return { image: canvas, width: canvas.width, height: canvas.height, scale: canvas.width / width,
    scaleY: canvas.height / height, close() {} };
}

function isCanvasLike(src) {
  return (typeof HTMLCanvasElement !== 'undefined' && src instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== 'undefined' && src instanceof OffscreenCanvas) ||
    (typeof ImageBitmap !== 'undefined' && src instanceof ImageBitmap);
}

// An OffscreenCanvas where the browser has one (Safari before 16.4 has not), a <canvas> otherwise.
export function makeCanvas(width, height) {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(width, height);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

// The largest centred square: a whole image taken as one face keeps its proportions.
export function centreSquare(width, height) {
  const side = Math.min(width, height);
  return [(width - side) / 2, (height - side) / 2, side, side];
}

let cropCanvas = null;

// Grey values (0-255) of `box` ([x, y, w, h] in source pixels) scaled to size x size. With `lean`
// (radians, clockwise on screen: what faces.js' roll() measures) the box is turned back by that
// much about its centre first, so a tilted face comes out upright. Where the box reaches past the
// image's edge, the crop shows the image mirrored about that edge, as training's augmentation
// filled what its turns, zooms and shifts uncovered (fill_mode "reflect"); a face that fills the
// photo would otherwise be framed in a blank the network never saw (see bench/crop_margin.py).
// Transparent areas, and any part of the box more than one image away, count as white, as in
// training (Pillow composites on white).
export function greyCrop(drawable, box, size, lumaWeights, lean = 0) {
  if (!cropCanvas || cropCanvas.width !== size) cropCanvas = makeCanvas(size, size);
  const ctx = cropCanvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, size, size);
  const [x, y, w, h] = box;
  const [cx, cy] = [x + w / 2, y + h / 2];
  ctx.save();
  // Source pixels -> crop: around the box's centre, turned, then scaled.
  ctx.translate(size / 2, size / 2);
  ctx.scale(size / w, size / h);
  ctx.rotate(-lean);
  ctx.translate(-cx, -cy);
  // Only the source pixels the crop shows are drawn, not the whole photo: the box, or the turned
  // box's bounding square.
  const turned = (Math.max(w, h) / 2) * (Math.abs(Math.cos(lean)) + Math.abs(Math.sin(lean))) + 1;
  const [rx, ry] = lean === 0 ? [w / 2, h / 2] : [turned, turned];
  drawReflected(ctx, drawable, [cx - rx, cy - ry, cx + rx, cy + ry]);
  ctx.restore();
  const { data } = ctx.getImageData(0, 0, size, size);
  const [wr, wg, wb] = lumaWeights;
  const grey = new Float32Array(size * size);
  for (let i = 0; i < grey.length; i++) {
    grey[i] = wr * data[4 * i] + wg * data[4 * i + 1] + wb * data[4 * i + 2];
  }
  return grey;
}

// Draws the source region [x0, y0, x1, y1] (source pixels, possibly past the image's edges) in
// the context's current transform: the image itself, and beyond each edge the image mirrored
// about it (one copy each way; corners mirrored both ways).
function drawReflected(ctx, { image, width, height }, [x0, y0, x1, y1]) {
  // Copy -1 / 0 / 1 along an axis: where it lies, and how a point of it maps into the image.
  const span = (copy, length, from, to) => [Math.max(from, copy * length), Math.min(to, (copy + 1) * length)];
  const inImage = (copy, length, [a, b]) => (copy === 0 ? [a, b] : copy < 0 ? [-b, -a] : [2 * length - b, 2 * length - a]);
  for (const copyX of [-1, 0, 1]) {
    for (const copyY of [-1, 0, 1]) {
      const sx = span(copyX, width, x0, x1);
      const sy = span(copyY, height, y0, y1);
      if (sx[1] <= sx[0] || sy[1] <= sy[0]) continue;
      const [u0, u1] = inImage(copyX, width, sx);
      const [v0, v1] = inImage(copyY, height, sy);
      ctx.save();
      ctx.translate(copyX > 0 ? 2 * width : 0, copyY > 0 ? 2 * height : 0);
      ctx.scale(copyX === 0 ? 1 : -1, copyY === 0 ? 1 : -1);
      ctx.drawImage(image, u0, v0, u1 - u0, v1 - v0, u0, v0, u1 - u0, v1 - v0);
      ctx.restore();
    }
  }
}
