// webdet's service worker (beside index.html; build.mjs writes the build hash and the shell's file list).
// 1. Cross-origin isolation on any static host: the app's own page and files are re-served with
//    COOP: same-origin and COEP: require-corp, so the wasm backend may use threads (SharedArrayBuffer)
//    even where the server sends no such headers.
// 2. Offline: the app shell (page, bundle, stylesheet, wasm binaries, manifest, icon) is cached per build;
//    the model in model/ (model.json, its weight shards, metadata.json) is cached per model version, the
//    `version` field of metadata.json. metadata.json always goes to the network first, so a new export is
//    seen at once; once the new version is cached whole, the old one is deleted. Without a network
//    everything comes from the cache.
// Pages ask {type: 'webdet-offline'} and get {type: 'webdet-offline', ready, version, build} back; every
// page hears it again when a model version has been cached whole.
/* eslint-env serviceworker */

const BUILD = '__WEBDET_BUILD__';
const SHELL = []; // the app shell's files, listed by build.mjs (it knows which wasm binaries it copied)
const SHELL_PREFIX = 'webdet-shell-';
const SHELL_CACHE = `${SHELL_PREFIX}${BUILD}`;
const MODEL_PREFIX = 'webdet-model-';
const MESSAGE = 'webdet-offline';
const SCOPE = new URL(self.registration.scope);
const MODEL_DIR = new URL('model/', SCOPE);
const COMPLETE = new URL('.webdet-complete', MODEL_DIR).href; // marks a model version cached whole
const NO_BODY = new Set([101, 204, 205, 304]);

let current = null; // the model version this page load uses: a promise, renewed by every page load

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(SHELL.map((name) => new Request(new URL(name, SCOPE), { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const old = (await caches.keys()).filter((key) => key.startsWith(SHELL_PREFIX) && key !== SHELL_CACHE);
    await Promise.all(old.map((key) => caches.delete(key)));
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
  const path = url.pathname.slice(SCOPE.pathname.length);
  if (request.mode === 'navigate') {
    if (path !== '' && path !== 'index.html') return; // other pages (the service's /docs) are not the app's
    current = null;
    event.respondWith(fromShell('index.html'));
  } else if (SHELL.includes(path)) {
    event.respondWith(fromShell(path));
  } else if (path.startsWith('model/')) {
    event.respondWith(fromModel(path.slice('model/'.length), event));
  }
});

self.addEventListener('message', (event) => {
  if (event.data?.type !== MESSAGE) return;
  event.waitUntil(status().then((answer) => event.source?.postMessage(answer)));
});

/** The response with the isolation headers; an opaque or null-body response cannot take them and needs none. */
function isolated(response) {
  if (response.type === 'opaque' || response.type === 'opaqueredirect' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  const body = NO_BODY.has(response.status) ? null : response.body;
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

/** A shell file: from this build's cache (filled at install), else from the network into it. */
async function fromShell(name) {
  const cache = await caches.open(SHELL_CACHE);
  const url = new URL(name, SCOPE).href;
  let response = await cache.match(url);
  if (!response) {
    response = await fetch(url);
    if (response.ok) await cache.put(url, response.clone());
  }
  return isolated(response);
}

/** A model file. metadata.json: network first. The others: from the current version's cache, else the network. */
async function fromModel(name, event) {
  const url = new URL(name, MODEL_DIR).href;
  if (name === 'metadata.json') {
    const found = await metadata();
    current = Promise.resolve(found);
    return isolated(found.response);
  }
  current ??= metadata();
  const { version } = await current.catch(() => ({ version: null }));
  if (!version) return isolated(await fetch(url)); // no metadata.json anywhere: nothing to key a cache by
  const cache = await caches.open(MODEL_PREFIX + version);
  let response = await cache.match(url);
  if (!response) {
    response = await fetch(url, { cache: 'no-cache' });
    if (response.ok) {
      await cache.put(url, response.clone());
      event.waitUntil(completed(version));
    }
  }
  return isolated(response);
}

/**
 * metadata.json from the network, stored in its version's cache: {response, version}. Without a network,
 * the cached copy of the newest version cached whole (or else of any cached one); version is null when there
 * is neither. An export written before `version` existed is keyed by a digest of its metadata.json.
 */
async function metadata() {
  const url = new URL('metadata.json', MODEL_DIR).href;
  let response;
  try {
    response = await fetch(url, { cache: 'no-store' });
  } catch (err) {
    const version = await cachedVersion();
    const cached = version && (await (await caches.open(MODEL_PREFIX + version)).match(url));
    if (!cached) throw err;
    return { response: cached, version };
  }
  if (!response.ok) return { response, version: null };
  const bytes = await response.clone().arrayBuffer();
  const version = await versionOf(bytes);
  await (await caches.open(MODEL_PREFIX + version)).put(url, response.clone());
  return { response, version };
}

async function versionOf(bytes) {
  try {
    const given = JSON.parse(new TextDecoder().decode(bytes)).version;
    if (typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given)) return given;
  } catch {
    // not JSON: the app reports that itself; the digest still keys the cache
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return `metadata-${[...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The cached model versions, those cached whole first. */
async function cachedVersions() {
  const versions = (await caches.keys()).filter((key) => key.startsWith(MODEL_PREFIX))
    .map((key) => key.slice(MODEL_PREFIX.length));
  const whole = [];
  const partial = [];
  for (const version of versions) {
    ((await (await caches.open(MODEL_PREFIX + version)).match(COMPLETE)) ? whole : partial).push(version);
  }
  return [...whole, ...partial];
}

async function cachedVersion() {
  return (await cachedVersions())[0] ?? null;
}

/**
 * Whether `version`'s cache holds model.json, metadata.json and every shard model.json lists; the first time
 * it does, it is marked whole, every other version is deleted and every page is told.
 */
async function completed(version) {
  if (!(await caches.has(MODEL_PREFIX + version))) return false;
  const cache = await caches.open(MODEL_PREFIX + version);
  if (await cache.match(COMPLETE)) return true;
  const topology = await cache.match(new URL('model.json', MODEL_DIR).href);
  if (!topology) return false;
  let manifest;
  try {
    manifest = (await topology.json()).weightsManifest ?? [];
  } catch {
    return false;
  }
  const needed = ['metadata.json', ...manifest.flatMap((group) => group.paths ?? [])];
  for (const name of needed) {
    if (!(await cache.match(new URL(name, MODEL_DIR).href))) return false;
  }
  await cache.put(COMPLETE, new Response(version));
  const others = (await caches.keys()).filter((key) => key.startsWith(MODEL_PREFIX) && key !== MODEL_PREFIX + version);
  await Promise.all(others.map((key) => caches.delete(key)));
  const answer = await status(version);
  for (const client of await self.clients.matchAll({ includeUncontrolled: true })) client.postMessage(answer);
  return true;
}

/** {type, ready, version, build}: ready when this build's shell and a model version are cached whole. */
async function status(version = null) {
  const shell = await caches.open(SHELL_CACHE);
  const shellWhole = (await Promise.all(SHELL.map((name) => shell.match(new URL(name, SCOPE).href)))).every(Boolean);
  let known = version;
  if (!known && current) known = (await current.catch(() => ({}))).version ?? null;
  if (!known) known = await cachedVersion();
  const modelWhole = known ? await completed(known) : false;
  return { type: MESSAGE, ready: shellWhole && modelWhole, version: modelWhole ? known : null, build: BUILD };
}
