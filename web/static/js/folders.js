// The photos of a folder, dropped or picked, in the order a file manager lists them (case aside,
// numbers by value: IMG_9 before IMG_10; sub-folders where their names fall), each named by its
// path in the folder ("trip/day 2/IMG_0042.jpg"). Files that are not images, and hidden files and
// folders (".DS_Store", "._IMG_0042.jpg", ".thumbnails/"), are left out.

// One collator for every comparison: localeCompare with options builds one per call, which made
// sorting a folder of 200,000 photos take minutes.
const byName = new Intl.Collator(undefined, { numeric: true }).compare;
const hidden = (name) => name.startsWith('.');

// Files as [File]: those dropped as they are, and for each dropped folder its images. A folder
// arrives as one unreadable "file" in dataTransfer.files, so each is walked instead, sub-folders
// too. Must be called within the drop event: the browser empties the drop's items once it returns.
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

// The images of a folder picked with <input webkitdirectory>, which gives every file in it and in
// its sub-folders, each with its path: the same photos, names and order as that folder dropped.
export function pickedFolderImages(files) {
  const path = (file) => file.webkitRelativePath || file.name;
  return [...files]
    .filter((file) => file.type.startsWith('image/') && !path(file).split('/').slice(1).some(hidden))
    .sort((a, b) => comparePaths(path(a), path(b)))
    .map((file) => named(file, path(file)));
}

// Paths compared folder by folder, as a walk through the folders in name order meets them.
function comparePaths(a, b) {
  const [pa, pb] = [a.split('/'), b.split('/')];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const order = byName(pa[i], pb[i]);
    if (order !== 0) return order;
  }
  return pa.length - pb.length;
}

async function collectImages(directory, files) {
  for (const entry of await children(directory)) {
    if (hidden(entry.name)) continue;
    if (entry.isDirectory) await collectImages(entry, files);
    else if (entry.isFile) {
      const file = await fileOf(entry);
      if (file.type.startsWith('image/')) files.push(named(file, entry.fullPath.replace(/^\//, '')));
    }
  }
}

// A folder's entries in name order. readEntries gives them in batches (of 100 in Chromium) until
// it gives none.
async function children(directory) {
  const reader = directory.createReader();
  const all = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    all.push(...batch);
  }
  return all.sort((a, b) => byName(a.name, b.name));
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

function named(file, name) {
  return new File([file], name, { type: file.type, lastModified: file.lastModified });
}
