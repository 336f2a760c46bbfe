// Camera only: start and stop the webcam, and run a callback on each frame while it is on.
export class CameraError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

let stream = null;
let running = false;

export async function startCamera(video, onFrame) {
  if (!navigator.mediaDevices?.getUserMedia) throw new CameraError('camera_missing', 'no camera API');
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' }, audio: false,
    });
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') throw new CameraError('camera_denied', err.message);
    if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') throw new CameraError('camera_missing', err.message);
    throw new CameraError('camera_failed', err.message);
  }
  video.srcObject = stream;
  await video.play();
  running = true;
  // One frame at a time: the next starts when the last result is drawn, so work never piles up.
  // The next one is the camera's next new frame (requestVideoFrameCallback) rather than the next
  // display refresh, which would idle up to 16 ms after every result and never repeat a frame.
  const next = (fn) => (video.requestVideoFrameCallback ? video.requestVideoFrameCallback(fn) : requestAnimationFrame(fn));
  const loop = async () => {
    if (!running) return;
    if (video.readyState >= 2) await onFrame(video);
    if (running) next(loop);
  };
  next(loop);
}

export function stopCamera(video) {
  running = false;
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  video.srcObject = null;
}

export function cameraOn() {
  return running;
}
