// Files the page makes for a person to keep: the results as a CSV table, a photo with its faces
// labelled. Made in the page and saved on this device; nothing is sent anywhere.

// `blob` saved as `filename` (the browser's download).
export function saveFile(blob, filename) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 40000);  // once the download has surely read it
}

// The name a labelled copy of the photo `name` is saved under: "group.jpg" -> "group-facemood.jpg".
// Characters no file system takes are replaced, and a pasted image's name may hold anything.
export function labelledName(name, type) {
  const stem = name.replace(/\.[A-Za-z0-9]{1,5}$/, '').replace(/[\\/:*?"<>|\x00-\x1f]/g, '_').slice(0, 120);
  return `${stem || 'photo'}-facemood.${type === 'image/jpeg' ? 'jpg' : 'png'}`;
}

// The results on the page as a CSV table: one row per face, boxes in the photo's own pixels, the
// label and every class probability; a photo without a face gets one row with only its name, so no
// photo read goes missing from the table (one that could not be read has no result, and no row).
// Class names are the model's, not translated: a table is for other programs.

// A text cell a spreadsheet would run as a formula (=, +, -, @, tab, return: a file can be named
// so) is kept as text; numbers, negative ones included, stay numbers.
function cell(value) {
  let text = String(value ?? '');
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

// `entries`: [{name, result: {faces}}] in the order the photos were given.
export function resultsCsv(entries, labels) {
  const rows = [['file', 'face', 'x', 'y', 'width', 'height', 'label', ...labels]];
  for (const { name, result } of entries) {
    if (result.faces.length === 0) rows.push([name, '', '', '', '', '', '', ...labels.map(() => '')]);
    result.faces.forEach((face, i) => {
      rows.push([name, i + 1, ...face.box.map(Math.round), face.label,
        ...labels.map((label) => face.scores[label].toFixed(4))]);
    });
  }
  return rows.map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}
