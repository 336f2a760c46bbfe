// Errors the page shows to people: `code` and `params` name the message in the UI's language files
// (i18n/*.json); `message` is the English one, for the console and for code that embeds the page.
export class CodedError extends Error {
  constructor(code, params, message) {
    super(message);
    this.code = code;
    this.params = params;
  }
}

// Whether `err` names a message of the language files: a CodedError's code is a string; the
// browser's own errors (DOMException) carry a legacy numeric `code`, which names none.
export function hasMessageKey(err) {
  return typeof err?.code === 'string';
}

// What to show for `err` inside another message: its own message key where it has one (so it is
// shown, and switched, in the page's language), its English message otherwise.
export function shownMessage(err) {
  return hasMessageKey(err) ? { code: err.code, params: err.params ?? {} } : String(err?.message ?? err);
}
