// Wires the page: drop, pick or paste images, or turn on the camera; all of it runs on this device.
import { facemood } from './facemood.js';
import { cameraOn, startCamera, stopCamera } from './camera.js';
import { loadLanguage, switchLanguage, t } from './i18n.js';
import { idle } from './idle.js';
import { droppedFiles, pickedFolderImages } from './folders.js';
import { centreSquare } from './image.js';
import {
  clearResults, colourOf, drawLive, labelledImage, redraw, setStatus, showError, showResult, shownResults, whileBusy,
} from './ui.js';
import { resultsCsv, saveFile } from './export.js';
import { ExpressionTimeline } from './timeline.js';
import { hasMessageKey, shownMessage } from './errors.js';

const dropZone = document.getElementById('drop-zone');
const fileInput = document.getElementById('file-input');
const folderInput = document.getElementById('folder-input');
const cameraButton = document.getElementById('camera-toggle');
const cameraSection = document.getElementById('camera');
const video = document.getElementById('camera-video');
const overlay = document.getElementById('camera-overlay');
const fpsLine = document.getElementById('camera-fps');
const liveList = document.getElementById('camera-faces');
const liveAnnouncement = document.getElementById('camera-announce');
const cameraSave = document.getElementById('camera-save');
const languageButton = document.getElementById('language');
const batchBox = document.getElementById('batch');
const batchBar = document.getElementById('batch-progress');
const batchText = document.getElementById('batch-text');

const languageReady = loadLanguage().catch((err) => console.warn(`language files unavailable: ${err.message}`));

// Photos are read one at a time, in the order given, in runs: photos given while a run is read
// join it, and a run of more than one shows its progress. Stop, or "Clear results", ends a run: the
// photo being read finishes (after a clear it shows no card) and no other of the run starts;
// photos given after that make a run of their own, read once the photo being read is answered.
// The latest run: {files, done, failed (of those done, the files that could not be read), total,
// ended: null | 'done' | 'stopped' | 'cleared', clears: `clears` when it began}.
let run = null;
// How many times the results were cleared: a photo whose reading began before the latest clear
// shows nothing, whichever run it belongs to (a stopped run's last photo may still be read).
let clears = 0;
let reading = null;  // the runs still being read, one after another; the service worker waits for them
let loadFailed = false;  // then the status keeps saying so, whatever a run does
let readyStatus = null;  // setStatus's arguments for "ready", once it is
let firstAnswered;  // resolves when the page's first photo is answered
const firstAnswer = new Promise((resolve) => { firstAnswered = resolve; });

function handleFiles(files) {
  if (!run || run.ended) {
    const fresh = { files: [], done: 0, failed: 0, total: 0, ended: null, clears };
    run = fresh;
    // After the runs before it, even one that failed; `reading` is cleared once none is left.
    const next = (reading ?? Promise.resolve()).catch(() => {}).then(() => readRun(fresh));
    const forget = () => { if (reading === next) reading = null; };
    reading = next;
    next.then(forget, forget);
  }
  for (const file of files) run.files.push(file);  // one by one: a spread of 200,000 overflows the stack
  run.total += files.length;
  showProgress();
  return reading;
}

async function readRun(current) {
  while (current.files.length) {
    const file = current.files.shift();
    const clearsBefore = clears;
    let read = false;
    try {
      read = await classifyFile(file);
    } catch (err) {
      // A fault of the page's own (a photo's own faults are cards already): this photo is answered
      // with it, and the run goes on, so that no photo given after it waits forever.
      console.error(err);
      if (clears === clearsBefore) showError(photoName(file), err);
    }
    current.done += 1;
    if (!read) current.failed += 1;
    firstAnswered();
    showProgress();
  }
  current.ended ??= 'done';
  if (current.total > 1 && !loadFailed && current.clears === clears) {
    // The files that could not be read are counted apart, as the results' summary counts photos read.
    const key = (current.ended === 'stopped' ? 'batch_stopped' : 'batch_done') + (current.failed ? '_failed' : '');
    setStatus(key, { done: current.done, total: current.total, read: current.done - current.failed, failed: current.failed }, 'info');
  }
}

function showProgress() {
  const hide = !run || run.ended !== null || run.total < 2 || run.done >= run.total;
  // A run that ends by itself hides Stop too: the keyboard's focus goes where the next thing begins.
  if (hide && !batchBox.hidden && batchBox.contains(document.activeElement)) fileInput.focus();
  batchBox.hidden = hide;
  if (!run) return;
  batchBar.max = run.total;
  batchBar.value = run.done;
  batchText.dataset.i18nParams = JSON.stringify({ done: run.done, total: run.total });
  batchText.textContent = t('batch_progress', { done: run.done, total: run.total });
}

function endRun(how) {
  if (!run || run.ended) return;
  run.files.length = 0;
  run.ended = how;
  showProgress();
}

// Stop and "Clear results" hide themselves: the keyboard's focus would be left nowhere, so it moves
// to the photo picker, where the next thing to do begins.
function onClickHidingItself(id, action) {
  const button = document.getElementById(id);
  button.addEventListener('click', () => {
    const focused = document.activeElement === button;
    action();
    if (focused) fileInput.focus();
  });
}

onClickHidingItself('batch-stop', () => endRun('stopped'));

// A pasted image may come without a name: the cards then name it in the page's language.
const photoName = (file) => file.name || null;

// A photo given before the networks are ready starts decoding at once (classify waits for them).
async function classifyFile(file) {
  const clearsBefore = clears;
  let result = null;
  let error = null;
  try {
    result = await facemood.classify(file);
  } catch (err) {
    error = err;
  }
  await languageReady;  // a card drawn before its language file would show message keys
  if (clears !== clearsBefore) return true;
  const name = photoName(file);
  if (error) showError(name, error);
  else {
    showResult(name, URL.createObjectURL(file), result, facemood.metadata.labels,
      { readWhole: () => wholePhotoAsFace(file, result), type: file.type });
  }
  return !error;
}

// The result of a photo without a detected face, read again as one face: its largest centred
// square (what classifyFace takes), boxed like a detected face.
async function wholePhotoAsFace(file, { width, height }) {
  const { scores, label, ms } = await facemood.classifyFace(file);
  return { faces: [{ box: centreSquare(width, height), scores, label, detection: null }], width, height, ms };
}

// The whole page takes a dropped file: one let go a little outside the box would otherwise make the
// browser open it in place of the page. The box lights up while files are dragged over the page
// (enter and leave fire for every element crossed, hence the count).
const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes('Files');
let dragDepth = 0;
document.addEventListener('dragenter', (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  dropZone.classList.add('over');
});
document.addEventListener('dragleave', (event) => {
  if (carriesFiles(event) && --dragDepth <= 0) dropZone.classList.remove('over');
});
// Whatever is dropped, the page stays: a link or an image dragged from another tab would otherwise
// be opened in its place, and every result with it. Only files can be read (another site's image
// is not this page's to read), so anything else gets a word on what to do instead.
document.addEventListener('dragover', (event) => event.preventDefault());
document.addEventListener('drop', (event) => {
  event.preventDefault();
  dragDepth = 0;
  dropZone.classList.remove('over');
  if (!carriesFiles(event)) {
    setStatus('drop_files_only', {}, 'error');
    return;
  }
  droppedFiles(event.dataTransfer).then(
    (files) => (files.length ? handleFiles(files) : setStatus('no_images_dropped', {}, 'error')),
    (err) => setStatus('drop_failed', { message: shownMessage(err) }, 'error'),
  );
});
fileInput.addEventListener('change', () => {
  handleFiles([...fileInput.files]);
  fileInput.value = '';
});
folderInput.addEventListener('change', () => {
  const files = pickedFolderImages(folderInput.files);
  folderInput.value = '';
  if (files.length) handleFiles(files);
  else setStatus('no_images_in_folder', {}, 'error');
});
// Pasted files: the images among them; where none is, the files all the same, each then answered
// with why it cannot be read (a pasted text file would otherwise do nothing at all).
document.addEventListener('paste', (event) => {
  const pasted = [...(event.clipboardData?.files || [])];
  const images = pasted.filter((f) => f.type.startsWith('image/'));
  if (pasted.length) handleFiles(images.length ? images : pasted);
});

const timeline = new ExpressionTimeline(document.getElementById('camera-timeline'), colourOf);

// Frames per second over the last second of processed frames.
const frameTimes = [];
async function classifyFrame(frame) {
  const result = await facemood.classify(frame);
  const now = performance.now();
  timeline.add(now, result.faces[0]?.scores ?? null);
  timeline.draw(facemood.metadata.labels);
  frameTimes.push(now);
  while (frameTimes[0] < now - 1000) frameTimes.shift();
  fpsLine.textContent = t('fps', { fps: frameTimes.length });
  fpsLine.dataset.fps = String(frameTimes.length);
  drawLive(overlay, liveList, frame, result, facemood.metadata.labels, liveAnnouncement);
}

// The results as a file on this device: made in the page, nothing is sent anywhere.
document.getElementById('save-csv').addEventListener('click', () => {
  const csv = resultsCsv(shownResults(), facemood.metadata?.labels ?? []);  // none when the model failed to load
  // The byte-order mark tells spreadsheets the file is UTF-8: Excel would otherwise read it in the
  // system's code page, and a Korean file name would come out garbled.
  saveFile(new Blob(['\ufeff', csv], { type: 'text/csv' }), 'facemood-results.csv');
});
onClickHidingItself('clear-results', () => {
  clears += 1;
  endRun('cleared');
  clearResults();
  // A run's "Done: ..." would speak of cards no longer there: the page says it is ready again.
  if (!loadFailed && readyStatus) setStatus(...readyStatus);
});

// The frame on screen now, its faces found again on that very frame and labelled, as a JPEG (the
// live labels lag the picture by a frame).
cameraSave.addEventListener('click', () => whileBusy(cameraSave, async () => {
  try {
    const frame = await createImageBitmap(video);
    try {
      const result = await facemood.classify(frame, { range: 'close' });
      const blob = await labelledImage(frame, result, facemood.metadata.labels, 'image/jpeg');
      const taken = new Date().toISOString().slice(0, 19).replaceAll(':', '-');
      saveFile(blob, `facemood-camera-${taken}.jpg`);
    } finally {
      frame.close();
    }
  } catch (err) {
    setStatus('save_failed', { message: shownMessage(err) }, 'error');
  }
}));

// A camera starting again shows nothing of the last one: no frame rate, faces or chart from then.
function clearLiveView() {
  timeline.clear();
  frameTimes.length = 0;
  fpsLine.textContent = '';
  delete fpsLine.dataset.fps;
  liveList.replaceChildren();
  liveAnnouncement.textContent = '';
}

function showCameraStopped() {
  cameraSection.hidden = true;
  cameraButton.dataset.i18n = 'camera_start';
  cameraButton.textContent = t('camera_start');
}

// The button is disabled while the camera starts (a second click then would start a second
// stream), and keeps the keyboard's focus: Enter again stops the camera.
cameraButton.addEventListener('click', () => {
  if (cameraOn()) {
    stopCamera(video);
    showCameraStopped();
    return undefined;
  }
  return whileBusy(cameraButton, startCameraView);
});

async function startCameraView() {
  try {
    await facemood.ready;
    clearLiveView();
    // The section shows while the camera starts; there is no frame to save until it runs.
    cameraSave.disabled = true;
    cameraSection.hidden = false;
    await startCamera(video, classifyFrame, (err) => {
      showCameraStopped();
      setStatus('camera_stopped', { message: shownMessage(err) }, 'error');
    });
    cameraSave.disabled = false;
    cameraButton.dataset.i18n = 'camera_stop';
    cameraButton.textContent = t('camera_stop');
  } catch (err) {
    cameraSection.hidden = true;
    // The camera's own errors are messages of their own; anything else (the model failing to load)
    // is why the camera could not start.
    if (hasMessageKey(err) && err.code.startsWith('camera_')) setStatus(err.code, { message: err.message }, 'error');
    else setStatus('camera_failed', { message: shownMessage(err) }, 'error');
  }
}

languageButton.addEventListener('click', async () => {
  try {
    await switchLanguage();
    redraw();
  } catch (err) {
    setStatus('language_failed', { message: err.message }, 'error');
  }
});

// Once the page is ready and the first photo given meanwhile is answered (if any was), in a task
// of its own after its card is drawn: for work that must not compete with the first result. Not
// the whole run: a folder of thousands given first would hold the language switch and the offline
// cache back until its last photo.
async function afterFirstResults() {
  await facemood.ready;
  if (reading) await Promise.race([reading.catch(() => {}), firstAnswer]);
  await idle();
}

// The language switch is labelled in the other language's script. On a page in English, its Hangul
// is the first on the page: the browser then searches the system's fonts for one that has it, which
// doubled the page's first layout (about 35 ms, traced in headless Chromium), and that layout comes
// before the runtime starts. So the switch appears once the first photos are answered; it does
// nothing before this module runs anyway. The page counts as ready from then on.
Promise.all([facemood.ready, languageReady]).then(
  async ([{ backend, loadMs }]) => {
    readyStatus = ['ready', { ms: Math.round(loadMs), backend }, 'ready'];
    setStatus(...readyStatus);
    await afterFirstResults();
    languageButton.hidden = false;
    document.body.dataset.ready = 'true';
  },
  (err) => {
    loadFailed = true;
    setStatus('load_failed', { message: shownMessage(err) }, 'error');
    languageButton.hidden = false;  // the message, at least, can be read in the other language
  },
);

// Offline after the first visit: the service worker caches the page, runtime and models. It is
// registered after the first results, so its downloads never compete with them.
async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  await afterFirstResults();
  const registration = await navigator.serviceWorker.register('sw.js');
  offerUpdates(registration);
}

// A new build (a new model, say) waits until no page of the old one is open (sw.js), and a reload
// alone does not end that wait. So a page that sees it waiting offers to switch: the new worker
// takes over and the page reloads into the new build.
const updateBox = document.getElementById('update');
function offerUpdates(registration) {
  const offer = () => {
    // No controller: this is the site's first worker, which takes the page over by itself.
    if (registration.waiting && navigator.serviceWorker.controller) updateBox.hidden = false;
  };
  registration.addEventListener('updatefound', () => {
    const worker = registration.installing;
    worker?.addEventListener('statechange', () => { if (worker.state === 'installed') offer(); });
  });
  offer();
  document.getElementById('update-reload').addEventListener('click', () => {
    if (!registration.waiting) {  // another page of the site switched already
      location.reload();
      return;
    }
    navigator.serviceWorker.addEventListener('controllerchange', () => location.reload(), { once: true });
    registration.waiting.postMessage('take-over');
  });
}
registerServiceWorker().catch((err) => console.warn(`offline mode unavailable: ${err.message}`));
