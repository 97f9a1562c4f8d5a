// The page's side of sw.js: registers the service worker, reloads once so that a plain static host's page
// becomes cross-origin isolated (the worker re-serves it with COOP/COEP), and follows what the worker has
// cached for offline use. Where service workers are unavailable (file://, plain http on another machine)
// or registration fails, the app simply runs without them.
//   window.webdet.serviceWorker: 'unavailable' | 'failed: …' | 'isolated' | 'not isolated'
//   window.webdet.offlineReady: true once the app shell and the current model are all cached
//   window.webdet.offlineVersion: the model version (metadata.json `version`) the cache holds

const RELOAD_KEY = 'webdet.isolation-reload';
const READY_TIMEOUT_MS = 15000; // a worker that cannot install in time is left for the next visit
const MESSAGE = 'webdet-offline';

let settled = Promise.resolve('not registered');

/** Resolves once the page knows it will not reload for isolation (it never resolves on a page about to reload). */
export function isolationSettled() {
  return settled;
}

function publish(fields, env) {
  if (env.webdet && typeof env.webdet === 'object') Object.assign(env.webdet, fields);
}

function storage(env) {
  try {
    return env.sessionStorage ?? null;
  } catch {
    return null; // storage disabled: no reload guard, so no reload either
  }
}

const delay = (ms) => new Promise((resolve) => { setTimeout(() => resolve(null), ms); });

/**
 * Registers `url` (sw.js beside the page); resolves to 'unavailable', 'failed: …', 'isolated' or
 * 'not isolated'. When the page is not cross-origin isolated yet and has not reloaded for it in this tab,
 * it reloads once the worker is active (the promise then stays pending); never when it is already
 * isolated, as under `webdet serve`, which sends the headers itself.
 */
export function registerServiceWorker(url = './sw.js', env = globalThis) {
  const registered = register(url, env).catch((err) => {
    const outcome = `failed: ${err?.message ?? err}`;
    publish({ serviceWorker: outcome }, env);
    return outcome;
  });
  // An isolated page never reloads: the app need not wait for the registration.
  settled = env.crossOriginIsolated ? Promise.resolve('isolated') : registered;
  return registered;
}

async function register(url, env) {
  const container = env.navigator?.serviceWorker;
  publish({ serviceWorker: null, offlineReady: false, offlineVersion: null }, env);
  if (!env.isSecureContext || !container) {
    publish({ serviceWorker: 'unavailable' }, env);
    return 'unavailable';
  }
  container.addEventListener('message', (event) => {
    const data = event.data;
    if (data?.type === MESSAGE) publish({ offlineReady: Boolean(data.ready), offlineVersion: data.version ?? null }, env);
  });
  const registration = await container.register(url);
  container.addEventListener('controllerchange', () => askStatus(registration, container));
  const store = storage(env);
  if (env.crossOriginIsolated) {
    guard(store, false);
    publish({ serviceWorker: 'isolated' }, env);
    askStatus(registration, container);
    return 'isolated';
  }
  const active = store && !store.getItem(RELOAD_KEY)
    ? await Promise.race([activeWorker(registration), delay(READY_TIMEOUT_MS)]) : null;
  if (!active || !guard(store, true)) {
    publish({ serviceWorker: 'not isolated' }, env); // reloaded once already, or the worker is not ready
    askStatus(registration, container);
    return 'not isolated';
  }
  env.location.reload();
  return new Promise(() => {}); // this page is going away; nothing may start loading the model on it
}

/** The registration's active worker once there is one; null as soon as its new worker fails to install. */
function activeWorker(registration) {
  return new Promise((resolve) => {
    const worker = registration.installing ?? registration.waiting;
    if (registration.active || !worker) {
      resolve(registration.active ?? null);
      return;
    }
    worker.addEventListener('statechange', () => {
      if (worker.state === 'activated') resolve(worker);
      else if (worker.state === 'redundant') resolve(registration.active ?? null);
    });
  });
}

/** Sets (before the reload) or clears (once isolated) the one-reload-per-tab guard; false where it cannot. */
function guard(store, reloading) {
  try {
    if (reloading) store.setItem(RELOAD_KEY, String(Date.now()));
    else store?.removeItem(RELOAD_KEY);
    return true;
  } catch {
    return false;
  }
}

/** Asks the active worker how far its offline cache is; it answers with a MESSAGE (and again when it changes). */
function askStatus(registration, container) {
  const worker = container.controller ?? registration.active;
  worker?.postMessage({ type: MESSAGE });
}
