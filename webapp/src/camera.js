// The webcam: start with a facing mode, stop, and errors a person can act on.

export class CameraError extends Error {}

function explain(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was denied. Allow the camera in the browser\'s site settings, or detect on an uploaded image or video instead.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found. You can still detect on an uploaded image or video.';
    case 'NotReadableError':
      return 'The camera is in use by another application.';
    default:
      return `The camera could not start (${err?.message ?? err}).`;
  }
}

export async function startCamera(video, facingMode = 'user') {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new CameraError('This browser cannot use a camera here (it needs HTTPS or localhost). Upload an image or video instead.');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode, width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
  } catch (err) {
    throw new CameraError(explain(err));
  }
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function stopCamera(video) {
  const stream = video.srcObject;
  if (stream) stream.getTracks().forEach((track) => track.stop());
  video.srcObject = null;
}
