// Camera only: start and stop the webcam, and run a callback on each frame while it is on.
import { CodedError } from './errors.js';

// The camera that is on ({stream}), or null. Each start makes a new one and a stop clears it: a
// frame loop runs only while its own camera is the current one, so a stop followed at once by a
// start can never leave two loops running, and no stream is left open.
let current = null;

// Runs `onFrame(video)` on each new frame until stopCamera. A frame that fails, or a camera that
// goes away, stops the camera and calls `onStopped(error)`: the video would otherwise play on (or
// stand still) with nothing being read.
export async function startCamera(video, onFrame, onStopped = () => {}) {
  if (!navigator.mediaDevices?.getUserMedia) throw new CodedError('camera_missing', {}, 'no camera API');
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' }, audio: false,
    });
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') throw new CodedError('camera_denied', {}, err.message);
    if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') throw new CodedError('camera_missing', {}, err.message);
    throw new CodedError('camera_failed', {}, err.message);
  }
  stopCamera(video);  // one started meanwhile, were start called twice
  const session = { stream };
  current = session;
  const on = () => current === session;
  try {
    video.srcObject = stream;
    await video.play();
  } catch (err) {
    if (on()) stopCamera(video);
    else stream.getTracks().forEach((track) => track.stop());
    throw new CodedError('camera_failed', {}, err.message);
  }
  // A camera unplugged, taken by another app or revoked ends its track: no new frame comes, so the
  // loop below would just stop, leaving the last frame and its labels on screen as if live.
  stream.getVideoTracks()[0]?.addEventListener('ended', () => {
    if (!on()) return;
    stopCamera(video);
    onStopped(new CodedError('camera_ended', {}, 'the camera stopped sending pictures'));
  });
  // One frame at a time: the next starts when the last result is drawn, so work never piles up.
  // The next one is the camera's next new frame (requestVideoFrameCallback) rather than the next
  // display refresh, which would idle up to 16 ms after every result and never repeat a frame.
  const next = (fn) => (video.requestVideoFrameCallback ? video.requestVideoFrameCallback(fn) : requestAnimationFrame(fn));
  const loop = async () => {
    if (!on()) return;
    try {
      if (video.readyState >= 2) await onFrame(video);
    } catch (err) {
      if (on()) {
        stopCamera(video);
        onStopped(err);
      }
      return;
    }
    if (on()) next(loop);
  };
  next(loop);
}

export function stopCamera(video) {
  if (current) current.stream.getTracks().forEach((track) => track.stop());
  current = null;
  video.srcObject = null;
}

export function cameraOn() {
  return current !== null;
}
