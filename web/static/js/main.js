// Wires the page: drop, pick or paste images; each is classified on this device.
import { facemood } from './facemood.js';
import { setStatus, showError, showResult } from './ui.js';

const dropZone = document.getElementById('drop-zone');
const fileInput = document.getElementById('file-input');

async function handleFiles(files) {
  for (const file of files) {
    try {
      const result = await facemood.classify(file);
      showResult(file.name || 'pasted image', URL.createObjectURL(file), result, facemood.metadata.labels);
    } catch (err) {
      showError(file.name || 'pasted image', err.message);
    }
  }
}

dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('over');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('over');
  handleFiles([...event.dataTransfer.files]);
});
dropZone.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    fileInput.click();
  }
});
fileInput.addEventListener('change', () => {
  handleFiles([...fileInput.files]);
  fileInput.value = '';
});
document.addEventListener('paste', (event) => {
  const files = [...(event.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
  if (files.length) handleFiles(files);
});

facemood.ready.then(
  ({ backend, loadMs }) => {
    setStatus(`Ready: model loaded in ${Math.round(loadMs)} ms, running on ${backend}. Drop a photo.`, 'ready');
    document.body.dataset.ready = 'true';
  },
  (err) => setStatus(`The model could not be loaded: ${err.message}`, 'error'),
);

// Offline after the first visit: the service worker caches the page, runtime and models.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch((err) => console.warn(`offline mode unavailable: ${err.message}`));
}
