// The files of a drop, dropped folders included: a folder arrives as one unreadable "file" in
// dataTransfer.files, so each is walked instead (sub-folders too) for the images it holds.

// Files as [File]: those dropped as they are, and for each folder its images in name order (as a
// file manager lists them: case aside, numbers by value, sub-folders where their names fall; a
// photo's name is its path in the folder: "trip/day 2/IMG_0042.jpg"), other files left out.
// Must be called within the drop event: the browser empties the drop's items once it returns.
export async function droppedFiles(dataTransfer) {
  const items = [...(dataTransfer.items || [])];
  const entries = items.map((item) => (item.kind === 'file' ? item.webkitGetAsEntry?.() : null));
  if (!entries.some((entry) => entry?.isDirectory)) return [...dataTransfer.files];
  const files = [];
  for (const [i, entry] of entries.entries()) {
    if (entry?.isDirectory) await collectImages(entry, files);
    else if (entry) files.push(await fileOf(entry));
    else if (items[i].kind === 'file') files.push(items[i].getAsFile());
  }
  return files.filter(Boolean);
}

async function collectImages(directory, files) {
  for (const entry of await children(directory)) {
    if (entry.isDirectory) await collectImages(entry, files);
    else if (entry.isFile) {
      const file = await fileOf(entry);
      if (!file.type.startsWith('image/')) continue;
      const path = entry.fullPath.replace(/^\//, '');
      files.push(new File([file], path, { type: file.type, lastModified: file.lastModified }));
    }
  }
}

// A folder's entries, sorted as a file manager shows them (IMG_9 before IMG_10). readEntries
// gives them in batches (of 100 in Chromium) until it gives none.
async function children(directory) {
  const reader = directory.createReader();
  const all = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    all.push(...batch);
  }
  return all.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}
