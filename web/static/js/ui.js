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

// One card per image: the picture, then each face's top expression and its probability bars.
export function showResult(name, imageUrl, result) {
  const card = el('article', 'result');
  card.dataset.faces = String(result.faces.length);
  const figure = el('figure');
  const img = el('img');
  img.src = imageUrl;
  img.alt = `Photo ${name}`;
  figure.append(img, el('figcaption', null, name));
  card.append(figure);
  result.faces.forEach((face, i) => {
    const section = el('section', 'face');
    section.dataset.label = face.label;
    const heading = result.faces.length > 1 ? `Face ${i + 1}: ` : '';
    section.append(el('h2', 'verdict', `${heading}${face.label} (${percent(face.scores[face.label])})`));
    section.append(scoreBars(face.scores, face.label));
    card.append(section);
  });
  card.append(el('p', 'timing', `${result.ms.toFixed(0)} ms on this device`));
  resultsEl.prepend(card);
}

export function showError(name, message) {
  const card = el('article', 'result error');
  card.setAttribute('role', 'alert');
  card.append(el('p', null, `${name}: ${message}`));
  resultsEl.prepend(card);
}
