// UI text: one JSON file per language (i18n/en.json, i18n/ko.json). The language follows the
// browser's preference until the person picks one with the switch; the choice is remembered.
const LANGUAGES = ['en', 'ko'];
const STORAGE_KEY = 'facemood.language';
let strings = {};
let current = 'en';

function preferred() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGUAGES.includes(saved)) return saved;
  } catch { /* storage may be blocked; fall back to the browser's languages */ }
  for (const tag of navigator.languages || [navigator.language]) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return 'en';
}

export async function loadLanguage(language = preferred()) {
  const response = await fetch(new URL(`../../i18n/${language}.json`, import.meta.url));
  if (!response.ok) throw new Error(`i18n/${language}.json could not be loaded (${response.status})`);
  strings = await response.json();
  current = language;
  document.documentElement.lang = language;
  for (const node of document.querySelectorAll('[data-i18n]')) {
    const params = node.dataset.i18nParams ? JSON.parse(node.dataset.i18nParams) : {};
    node.textContent = t(node.dataset.i18n, params);
  }
  for (const node of document.querySelectorAll('[data-i18n-label]')) node.setAttribute('aria-label', t(node.dataset.i18nLabel));
  // The switch names the other language in that language, and is read out in its voice.
  for (const node of document.querySelectorAll('[data-i18n="switch_to"]')) node.lang = otherLanguage();
  if (strings.title) document.title = strings.title;
  return language;
}

export function otherLanguage() {
  return LANGUAGES[(LANGUAGES.indexOf(current) + 1) % LANGUAGES.length];
}

// Remembered only once switched: a language that could not be loaded (offline before the page was
// cached) must not become the next visit's choice.
export async function switchLanguage() {
  const next = await loadLanguage(otherLanguage());
  try { localStorage.setItem(STORAGE_KEY, next); } catch { /* not remembered, still switched */ }
  return next;
}

// The string for `key` with {placeholders} filled in; the key itself when a string is missing. A
// list is a list of class labels, named in the current language; a {code, params} object is a
// message of its own (an error's, inside "could not be loaded: …"), translated too.
export function t(key, params = {}) {
  const text = strings[key] ?? key;
  const shown = (value) => {
    if (Array.isArray(value)) return value.map(labelText).join(', ');
    if (value && typeof value === 'object' && typeof value.code === 'string') return t(value.code, value.params);
    return String(value);
  };
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? shown(params[name]) : `{${name}}`));
}

// A class label as people read it in the current language (the model's own label otherwise).
export function labelText(label) {
  return (strings.labels && strings.labels[label]) || label;
}
