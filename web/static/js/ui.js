// DOM only: status line, result cards and the live camera overlay. Text goes in through
// textContent, never as HTML, so labels and file names can hold anything.
import { labelledName, saveFile } from './export.js';
import { labelText, t } from './i18n.js';
import { CodedError, shownMessage } from './errors.js';

const statusEl = document.getElementById('status');
const resultsEl = document.getElementById('results');
const resultsActions = document.getElementById('results-actions');
const summaryEl = document.getElementById('results-summary');
const announceEl = document.getElementById('results-announce');
const shown = [];  // what is on screen, so a language switch can draw it again
let status = { key: 'loading', params: {}, kind: 'info' };

export function setStatus(key, params = {}, kind = 'info') {
  status = { key, params, kind };
  statusEl.textContent = t(key, params);
  statusEl.dataset.kind = kind;
  // A language file that arrives later re-translates this message, not the page's first one.
  statusEl.dataset.i18n = key;
  statusEl.dataset.i18nParams = JSON.stringify(params);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function percent(p) {
  return `${(p * 100).toFixed(1)} %`;
}

// The top probability in words, so a 40 % "happy" does not read like a certainty.
function confidence(p) {
  if (p >= 0.8) return t('confidence_high');
  if (p >= 0.5) return t('confidence_mid');
  return t('confidence_low');
}

// A colour per class, stable across images: the same expression always has the same colour.
// Each dark enough to be read (contrast 4.5:1 or more, WCAG AA) as white text on it (the labels on the
// photo) and as text on a card or a focused face's tint (the verdict).
const PALETTE = ['#c33144', '#46725b', '#7e607b', '#8c6113', '#007587', '#b7460a', '#2e4057', '#646b77'];
export function colourOf(labels, label) {
  return PALETTE[labels.indexOf(label) % PALETTE.length];
}

function scoreBars(scores, top) {
  const list = el('ul', 'bars');
  for (const [label, p] of Object.entries(scores)) {
    const item = el('li', label === top ? 'bar top' : 'bar');
    item.dataset.class = label;
    item.dataset.probability = String(p);
    item.append(el('span', 'bar-label', labelText(label)));
    const track = el('span', 'bar-track');
    const fill = el('span', 'bar-fill');
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    track.append(fill);
    item.append(track, el('span', 'bar-value', percent(p)));
    list.append(item);
  }
  return list;
}

// The photo with one labelled box per face, boxes placed in percent so they follow the image's size.
// The part of a face's box inside its photo, [x, y, width, height]: a face at the photo's edge is
// found with a box that runs past it, and drawn as it comes that box would lie over the page
// around the photo (and take its clicks) or off a saved photo's canvas.
function insidePhoto([x, y, w, h], width, height) {
  const left = Math.min(Math.max(x, 0), width);
  const top = Math.min(Math.max(y, 0), height);
  return [left, top, Math.max(0, Math.min(x + w, width) - left), Math.max(0, Math.min(y + h, height) - top)];
}

// A tag goes above its box, or inside it where the box starts near the photo's top (above, it would
// lie over the page); right-aligned where the box starts far to the right, so it stays over the photo.
const TAG_INSIDE_BELOW = 0.1;
const TAG_RIGHT_FROM = 0.6;

function photoWithBoxes(name, imageUrl, result, labels, card) {
  const figure = el('figure', 'photo');
  const frame = el('div', 'frame');
  const img = el('img');
  img.src = imageUrl;
  img.alt = t('photo_alt', { name });
  frame.append(img);
  result.faces.forEach((face, i) => {
    const [x, y, w, h] = insidePhoto(face.box, result.width, result.height);
    const box = el('button', 'face-box');
    box.type = 'button';
    box.classList.toggle('tag-inside', y < TAG_INSIDE_BELOW * result.height);
    box.classList.toggle('tag-right', x > TAG_RIGHT_FROM * result.width);
    box.dataset.face = String(i);
    box.setAttribute('aria-label', `${t('face_n', { n: i + 1 })}: ${labelText(face.label)}`);
    Object.assign(box.style, {
      left: `${(100 * x) / result.width}%`, top: `${(100 * y) / result.height}%`,
      width: `${(100 * w) / result.width}%`, height: `${(100 * h) / result.height}%`,
      borderColor: colourOf(labels, face.label),
    });
    const tag = el('span', 'face-tag', `${i + 1} ${labelText(face.label)}`);
    tag.style.background = colourOf(labels, face.label);
    box.append(tag);
    box.addEventListener('click', () => focusFace(card, i));
    frame.append(box);
  });
  figure.append(frame, el('figcaption', null, name));
  return figure;
}

// Clicking a face (its box or its section) highlights both and brings its bars into view.
function focusFace(card, index) {
  for (const node of card.querySelectorAll('[data-face]')) {
    node.classList.toggle('focused', node.dataset.face === String(index));
  }
  const section = card.querySelector(`section.face[data-face="${index}"]`);
  if (section) section.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function resultCard(entry) {
  const { name, imageUrl, result, labels, readWhole } = entry;
  const card = el('article', 'result');
  card.dataset.faces = String(result.faces.length);
  card.append(photoWithBoxes(name, imageUrl, result, labels, card));
  const details = el('div', 'details');
  if (result.faces.length === 0) {
    details.append(el('p', 'no-face', t('no_face')));
    // A face cropped so tightly that no detector sees it can still be read as it is.
    if (readWhole) {
      const button = el('button', 'button secondary whole-photo', t('whole_photo_as_face'));
      button.type = 'button';
      button.addEventListener('click', () => whileBusy(button, async () => {
        try {
          entry.result = await readWhole();
        } catch (err) {  // the file moved or was deleted since it was picked, say
          setStatus('whole_photo_failed', { message: shownMessage(err) }, 'error');
          return;
        }
        if (!card.isConnected) {  // every card was drawn again meanwhile (a language switch): again
          redraw();
        } else {
          const drawn = draw(entry);
          card.replaceWith(drawn);
          summarize();
          drawn.querySelector('.face-box')?.focus();  // the focused button is gone; its result takes the focus
        }
        announce(entry);
      }));
      details.append(button);
    }
  }
  result.faces.forEach((face, i) => {
    const section = el('section', 'face');
    section.dataset.label = face.label;
    section.dataset.face = String(i);
    const top = face.scores[face.label];
    const verdictText = t('verdict', { label: labelText(face.label), confidence: confidence(top), percent: percent(top) });
    const prefix = result.faces.length > 1 ? `${t('face_n', { n: i + 1 })}: ` : '';
    const verdict = el('h2', 'verdict', prefix + verdictText);
    verdict.style.color = colourOf(labels, face.label);
    section.append(verdict, scoreBars(face.scores, face.label));
    section.addEventListener('click', () => focusFace(card, i));
    details.append(section);
  });
  details.append(el('p', 'timing', t('timing', { ms: result.ms.toFixed(0) })));
  if (result.faces.length > 0) details.append(saveButton(entry, card));
  card.append(details);
  return card;
}

// `work` with `button` disabled meanwhile (no second click). A disabled button loses the keyboard's
// focus, and enabling it again does not give it back: it does here.
export async function whileBusy(button, work) {
  const focused = document.activeElement === button;
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
    if (focused && button.isConnected) button.focus();
  }
}

// Saves the photo with its faces labelled: "group.jpg" becomes "group-facemood.jpg".
function saveButton({ name, type, result, labels }, card) {
  const button = el('button', 'link-button save-image', t('save_image'));
  button.type = 'button';
  button.addEventListener('click', () => whileBusy(button, async () => {
    try {
      const img = card.querySelector('.photo img');
      await img.decode();
      const blob = await labelledImage(img, result, labels, type);
      saveFile(blob, labelledName(name, blob.type));
    } catch (err) {
      setStatus('save_failed', { message: shownMessage(err) }, 'error');
    }
  }));
  return button;
}

// `fresh`: a card shown for the first time is an alert, which screen readers say at once; drawn
// again (a language switch) it is not, or every error would be said again.
function errorCard({ name, code, params, message }, fresh) {
  const card = el('article', 'result error');
  if (fresh) card.setAttribute('role', 'alert');
  card.append(el('p', null, `${name}: ${code ? t(code, params) : message}`));
  return card;
}

// A photo without a name of its own (a pasted image may come without one) is named in the page's
// language at every drawing, so a language switch names it anew.
const named = (entry) => (entry.name ? entry : { ...entry, name: t('pasted') });

function draw(entry, fresh = false) {
  const drawn = named(entry);
  return drawn.result ? resultCard(drawn) : errorCard(drawn, fresh);
}

// `name`: the photo's file name, or null for a photo without one. `readWhole` (optional): a
// function giving the result of reading the whole photo as one face, offered when no face was found. `type`: the photo file's type, which a saved labelled photo keeps
// when it is JPEG.
export function showResult(name, imageUrl, result, labels, { readWhole = null, type = '' } = {}) {
  show({ name, imageUrl, result, labels, readWhole, type });
}

// How many photos were read and faces found, and how many faces each expression has, most first:
// for a run of many photos, the answer at a glance (the CSV has every face).
function summarize() {
  const photos = shown.filter((entry) => entry.result);
  const counts = new Map();
  for (const { result } of photos) for (const { label } of result.faces) counts.set(label, (counts.get(label) ?? 0) + 1);
  const faces = [...counts.values()].reduce((a, b) => a + b, 0);
  const classes = [...counts].sort((a, b) => b[1] - a[1]).map(([label, n]) => `${labelText(label)} ${n}`);
  // Files that could not be read are counted apart, so every file given is in one count or the other.
  const failed = shown.length - photos.length;
  const notRead = failed ? [t('summary_failed', { count: failed })] : [];
  summaryEl.textContent = shown.length ? [t('summary', { photos: photos.length, faces }), ...classes, ...notRead].join(' · ') : '';
}

export function showError(name, error) {
  const message = shownMessage(error);  // a message key where it has one, its own words otherwise
  show(typeof message === 'string' ? { name, message } : { name, ...message });
}

function show(entry) {
  shown.push(entry);
  resultsEl.prepend(draw(entry, true));
  resultsActions.hidden = false;
  summarize();
  if (entry.result) announce(entry);  // an error card is an alert of its own
}

// What a screen reader says of a new result: the photo's name and its faces' expressions.
function announce(entry) {
  const { name, result } = named(entry);
  const labels = result.faces.map((face) => face.label);
  announceEl.textContent = labels.length ? t('announce_faces', { name, labels }) : `${name}: ${t('no_face')}`;
}

// The photos classified so far, first given first: [{name, result}] (photos that failed are left out).
export function shownResults() {
  return shown.filter((entry) => entry.result).map(named).map(({ name, result }) => ({ name, result }));
}

// Every card gone, and the photos' memory given back.
export function clearResults() {
  for (const { imageUrl } of shown) if (imageUrl) URL.revokeObjectURL(imageUrl);
  shown.length = 0;
  resultsEl.replaceChildren();
  resultsActions.hidden = true;
  announceEl.textContent = '';  // what it said is of photos no longer shown
  summarize();
}

// Draw everything again in the current language.
export function redraw() {
  resultsEl.replaceChildren(...shown.map((entry) => draw(entry)).reverse());
  announceEl.textContent = '';  // in the language before; the cards now say it in this one
  summarize();
  setStatus(status.key, status.params, status.kind);
}

// Each face's box and label ("1 happy 87.0 %") drawn on `ctx`, in the coordinates of the faces'
// boxes; returns the labels. Text is sized to the picture and, in a crowd, to each face, so that
// neighbours' labels do not cover one another; a label that would leave the top edge goes inside.
// Each face's box and label drawn on a canvas the size of the photo times `scale`: the box kept on
// the canvas, its line sized to the face (a photo's width alone made lines over a small face's
// brows on large photos), the label above the box or, with no room there, inside it, and moved
// left where it would run off the canvas.
function drawFaces(ctx, faces, labels, scale = 1) {
  const { width, height: canvasHeight } = ctx.canvas;
  return faces.map((face, i) => {
    const [x, y, w, h] = insidePhoto(face.box.map((v) => v * scale), width, canvasHeight);
    const colour = colourOf(labels, face.label);
    const text = `${i + 1} ${labelText(face.label)} ${percent(face.scores[face.label])}`;
    const size = Math.round(Math.max(12, Math.min(width / 32, w / 5)));
    ctx.font = `bold ${size}px system-ui, sans-serif`;
    const height = size + 6;
    const top = y - height >= 0 ? y - height : y;
    const labelWidth = ctx.measureText(text).width + 8;
    const left = Math.max(0, Math.min(x, width - labelWidth));
    ctx.lineWidth = Math.max(2, Math.min(width / 200, w / 40));
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    ctx.fillStyle = colour;
    ctx.fillRect(left, top, labelWidth, height);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, left + 4, top + height - 6);
    return text;
  });
}

// A live reading is said only once it has held this long: near a boundary between two classes, or
// with a face lost for a frame, the words would otherwise change several times a second.
const SAY_AFTER_MS = 1000;
let heard = { said: '', since: 0 };

// Live camera: boxes and labels on a canvas over the video, and the faces listed in words.
// `announce`: an element screen readers read out when it changes, given the faces' expressions
// only when they change and have held for SAY_AFTER_MS (the list itself changes with every
// frame's percentages).
export function drawLive(canvas, list, video, result, labels, announce = null) {
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  list.replaceChildren(...drawFaces(ctx, result.faces, labels).map((text) => el('li', null, text)));
  const said = result.faces.map((face, i) => `${t('face_n', { n: i + 1 })}: ${labelText(face.label)}`).join(', ');
  const now = performance.now();
  if (said !== heard.said) heard = { said, since: now };
  if (announce && announce.textContent !== said && now - heard.since >= SAY_AFTER_MS) announce.textContent = said;
}

// A saved photo's longer side at most: a phone's 48-megapixel photo would otherwise need a canvas
// (and an image in memory) of about 200 MB.
const SAVED_SIDE = 4096;

// `source` (a decoded <img>, a video frame) with the faces of `result` boxed and labelled on it, as
// an image file: drawn in the page, nothing is sent anywhere. JPEG for a JPEG photo (a PNG of it
// would be several times larger), PNG otherwise, so that a drawing or screenshot stays sharp.
export async function labelledImage(source, result, labels, type) {
  const scale = Math.min(1, SAVED_SIDE / Math.max(result.width, result.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(result.width * scale);
  canvas.height = Math.round(result.height * scale);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  drawFaces(ctx, result.faces, labels, scale);
  const kind = type === 'image/jpeg' ? 'image/jpeg' : 'image/png';
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, kind, 0.92));
  if (!blob) throw new CodedError('cannot_encode', {}, 'the browser could not encode the image');
  return blob;
}
