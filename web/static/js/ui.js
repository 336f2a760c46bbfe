// DOM only: status line and result cards. Text goes in through textContent, never as HTML,
// so labels and file names can hold anything.
const statusEl = document.getElementById('status');
const resultsEl = document.getElementById('results');

export function setStatus(text, kind = 'info') {
  statusEl.textContent = text;
  statusEl.dataset.kind = kind;
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

function scoreBars(scores, top) {
  const list = el('ul', 'bars');
  for (const [label, p] of Object.entries(scores)) {
    const item = el('li', label === top ? 'bar top' : 'bar');
    item.dataset.class = label;
    item.dataset.probability = String(p);
    item.append(el('span', 'bar-label', label));
    const track = el('span', 'bar-track');
    const fill = el('span', 'bar-fill');
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    track.append(fill);
    item.append(track, el('span', 'bar-value', percent(p)));
    list.append(item);
  }
  return list;
}

// A colour per class, stable across images: the same expression always has the same colour.
const PALETTE = ['#d1495b', '#66a182', '#8e6c8a', '#edae49', '#00798c', '#f26419', '#2e4057', '#7d8491'];
export function colourOf(labels, label) {
  return PALETTE[labels.indexOf(label) % PALETTE.length];
}

// The photo with one labelled box per face, boxes placed in percent so they follow the image's size.
function photoWithBoxes(name, imageUrl, result, labels) {
  const figure = el('figure', 'photo');
  const frame = el('div', 'frame');
  const img = el('img');
  img.src = imageUrl;
  img.alt = `Photo ${name}`;
  frame.append(img);
  result.faces.forEach((face, i) => {
    const [x, y, w, h] = face.box;
    const box = el('div', 'face-box');
    box.dataset.face = String(i);
    Object.assign(box.style, {
      left: `${(100 * x) / result.width}%`, top: `${(100 * y) / result.height}%`,
      width: `${(100 * w) / result.width}%`, height: `${(100 * h) / result.height}%`,
      borderColor: colourOf(labels, face.label),
    });
    const tag = el('span', 'face-tag', `${i + 1} ${face.label}`);
    tag.style.background = colourOf(labels, face.label);
    box.append(tag);
    frame.append(box);
  });
  figure.append(frame, el('figcaption', null, name));
  return figure;
}

// One card per image: the photo with boxes, then each face's top expression and its bars.
export function showResult(name, imageUrl, result, labels) {
  const card = el('article', 'result');
  card.dataset.faces = String(result.faces.length);
  card.append(photoWithBoxes(name, imageUrl, result, labels));
  const details = el('div', 'details');
  if (result.faces.length === 0) {
    details.append(el('p', 'no-face', 'No face found in this photo. Faces should be upright, '
      + 'facing the camera and not too small; a closer crop often helps.'));
  }
  result.faces.forEach((face, i) => {
    const section = el('section', 'face');
    section.dataset.label = face.label;
    const prefix = result.faces.length > 1 ? `Face ${i + 1}: ` : '';
    const verdict = el('h2', 'verdict', `${prefix}${face.label} (${percent(face.scores[face.label])})`);
    verdict.style.color = colourOf(labels, face.label);
    section.append(verdict, scoreBars(face.scores, face.label));
    details.append(section);
  });
  details.append(el('p', 'timing', `${result.ms.toFixed(0)} ms on this device`));
  card.append(details);
  resultsEl.prepend(card);
}

export function showError(name, message) {
  const card = el('article', 'result error');
  card.setAttribute('role', 'alert');
  card.append(el('p', null, `${name}: ${message}`));
  resultsEl.prepend(card);
}
