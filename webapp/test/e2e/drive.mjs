// Drives the app in headless Debian Chromium (playwright-core) and prints what it saw as JSON.
//   node test/e2e/drive.mjs '{"url": "...", "scenario": "camera|upload|denied", ...}'
// Scenarios: camera (fake webcam from a .y4m file), upload (an image file), denied (camera refused),
// load (just open the page, e.g. with a missing model), server (server mode, `?api=URL`: wait until the
// detection server is online, upload `images` one after another; with `waitOffline`, print the result so far
// as one JSON line, wait for a line on stdin (the caller stops the server), then wait for "offline"),
// visits (several page loads in one browser, for the service worker: `visits` is a list of {url (else a
// reload), image (upload it), offlineReady (wait until the worker has cached everything; a string: until it
// has that model version), cachedText (paths whose cached copies to report), handshake (first print the
// visits so far as one JSON line and wait for a line on stdin, while the caller stops the server or rewrites
// the model), offline (the browser goes offline first)}; each reports isolation, threads, page loads and
// the worker's caches).
// `persistent: true` runs in a persistent profile (a temporary user-data-dir) instead of a fresh context.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const job = JSON.parse(process.argv[2]);
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream'];
if (job.scenario === 'camera') {
  args.push('--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${job.y4m}`);
}
const viewport = job.viewport ?? { width: 1000, height: 760 };
let browser = null;
let context;
let profile = null;
if (job.persistent) {
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'webdet-profile-'));
  context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true,
    args, viewport });
} else {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
  context = await browser.newContext({ viewport });
}
if (job.scenario === 'denied') await context.clearPermissions();
const page = context.pages()[0] ?? await context.newPage();
let navigations = 0; // page loads (a same-document history change is none)
page.on('load', () => { navigations += 1; });
const consoleErrors = [];
page.on('pageerror', (err) => consoleErrors.push(err.message));
const state = () => page.evaluate(() => JSON.parse(JSON.stringify(window.webdet)));
const result = { scenario: job.scenario };
const requests = [];
const multipartFields = (body, type) => {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(type ?? '');
  if (!body || !boundary) return null;
  const text = body.toString('latin1');
  return text.split(`--${boundary[1] ?? boundary[2]}`).slice(1, -1).map((part) => {
    const [head, ...rest] = part.replace(/^\r\n/, '').split('\r\n\r\n');
    const value = rest.join('\r\n\r\n').replace(/\r\n$/, '');
    const name = /name="([^"]*)"/.exec(head)?.[1];
    const filename = /filename="([^"]*)"/.exec(head)?.[1] ?? null;
    const contentType = /Content-Type: ([^\r\n]+)/i.exec(head)?.[1] ?? null;
    return { name, filename, contentType, bytes: Buffer.byteLength(value, 'latin1'), value: filename === null ? value : null };
  });
};
page.on('request', (request) => {
  if (!new URL(request.url()).pathname.startsWith('/api/')) return;
  const entry = { url: request.url(), method: request.method(), headers: request.headers() };
  if (request.method() === 'POST') entry.fields = multipartFields(request.postDataBuffer(), entry.headers['content-type']);
  requests.push(entry);
  request.response().then((response) => { entry.status = response?.status() ?? null; }, () => { entry.status = null; });
});
const snapshot = async () => ({
  state: await state(), status: await page.textContent('#status'), apiStatus: await page.textContent('#api-status'),
  errorText: await page.textContent('#error'), errorVisible: await page.isVisible('#error'), pageUrl: page.url(),
});
const nextLine = () => new Promise((resolve) => {
  const rl = readline.createInterface({ input: process.stdin });
  rl.once('line', (line) => { rl.close(); resolve(line); });
  rl.once('close', () => resolve(null));
});
const whenLoaded = () => page.waitForFunction(() => window.webdet && (window.webdet.ready || window.webdet.error), null,
  { timeout: 120000 });
const workerCaches = () => page.evaluate(async () => {
  if (!('caches' in window)) return null;
  const out = {};
  for (const name of await caches.keys()) {
    out[name] = (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname).sort();
  }
  return out;
});
const visit = async (step) => {
  const before = navigations;
  if (step.offline) await context.setOffline(true);
  if (step.url) await page.goto(step.url);
  else await page.reload();
  await whenLoaded();
  if (step.image) {
    const frames = (await state()).frames;
    await page.setInputFiles('#image-file', step.image);
    await page.waitForFunction((n) => window.webdet.frames > n || window.webdet.error, frames, { timeout: 120000 });
  }
  if (step.offlineReady) {
    await page.waitForFunction((v) => window.webdet.offlineReady && (v === true || window.webdet.offlineVersion === v),
      step.offlineReady, { timeout: 120000 });
  }
  await page.waitForTimeout(step.settleMs ?? 0);
  return { ...(await snapshot()), navigations: navigations - before,
    crossOriginIsolated: await page.evaluate(() => window.crossOriginIsolated),
    hardwareConcurrency: await page.evaluate(() => navigator.hardwareConcurrency),
    backendText: await page.textContent('#backend-used'), caches: await workerCaches(),
    cachedText: await page.evaluate(async (names) => {
      const out = {};
      for (const name of names) out[name] = (await (await caches.match(new URL(name, window.location.href)))?.text()) ?? null;
      return out;
    }, step.cachedText ?? []) };
};
try {
  if (job.scenario !== 'visits') {
    await page.goto(job.url);
    await whenLoaded();
  }
  if (job.scenario === 'visits') {
    result.visits = [];
    for (const step of job.visits) {
      if (step.handshake) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        await nextLine();
      }
      result.visits.push(await visit(step));
    }
  } else if (job.scenario === 'camera') {
    await page.click('#start');
    await page.waitForFunction((n) => window.webdet.frames >= n || window.webdet.error, job.frames ?? 3, { timeout: 300000 });
    result.tensorsAfterWarmup = (await state()).tensors;
    if (job.moreFrames) {
      const start = (await state()).frames;
      await page.waitForFunction((n) => window.webdet.frames >= n || window.webdet.error, start + job.moreFrames, { timeout: 600000 });
    }
  } else if (job.scenario === 'upload') {
    await page.setInputFiles('#image-file', job.image);
    await page.waitForFunction(() => window.webdet.frames >= 1 || window.webdet.error, null, { timeout: 120000 });
  } else if (job.scenario === 'server') {
    // Chromium reports a multipart body built from a Blob only for intercepted requests; pass them on unchanged.
    await page.route('**/api/detect*', (route) => route.continue());
    const uploadAll = async (images) => {
      for (const image of images ?? []) {
        const before = (await state()).frames;
        await page.setInputFiles('#image-file', image.path);
        await page.waitForFunction((n) => window.webdet.frames > n || window.webdet.error, before, { timeout: 120000 });
        await page.waitForTimeout(100); // let the last request's response event arrive
        result.uploads.push(await snapshot());
        if (image.screenshot) await page.screenshot({ path: image.screenshot });
      }
    };
    if (job.connect) {
      await page.fill('#api-url', job.connect);
      await page.click('#api-connect');
    }
    await page.waitForFunction(() => window.webdet.apiOnline !== null, null, { timeout: 60000 });
    result.connected = await snapshot();
    result.uploads = [];
    await uploadAll(job.images);
    if (job.disconnect) {
      await page.click('#api-connect');
      await page.waitForFunction(() => window.webdet.api === null, null, { timeout: 10000 });
      await uploadAll(job.imagesAfterDisconnect);
    }
    result.requests = JSON.parse(JSON.stringify(requests));
    if (job.waitOffline) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      await nextLine();
      const start = Date.now();
      await page.waitForFunction(() => window.webdet.apiOnline === false, null, { timeout: job.offlineTimeout ?? 15000 })
        .catch(() => {});
      result.offline = { afterMs: Date.now() - start, ...(await snapshot()) };
    }
    result.requests = requests;
  } else if (job.scenario === 'denied') {
    await page.click('#start');
    await page.waitForFunction(() => window.webdet.error, null, { timeout: 60000 });
  }
  result.state = await state();
  // job.inspect: result.page, the title, header, legend, perf line, page width and each shown box's colour read from
  // the overlay's pixels. job.keyboard {keys, frames?, image?}: then Tab through the page (result.tabOrder: the
  // focused ids), Tab to the slider, press `keys` there (result.afterKeys, after `frames` more frames), then upload
  // `image` (result.afterUpload).
  if (job.inspect) {
    result.page = await page.evaluate(() => {
      const ctx = document.getElementById('overlay').getContext('2d');
      const hex = (p) => `#${[p[0], p[1], p[2]].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
      const leftEdge = ([x0, y0, , y1]) => {
        const seen = [0.2, 0.35, 0.5, 0.65, 0.8].map((f) => hex(ctx.getImageData(Math.floor(x0), Math.floor(y0 + f * (y1 - y0)), 1, 1).data));
        return seen.sort((a, b) => seen.filter((c) => c === b).length - seen.filter((c) => c === a).length)[0];
      };
      return { title: document.title, header: document.querySelector('header h1').textContent,
        modelName: document.getElementById('model-name').textContent, perf: document.getElementById('perf').textContent,
        legend: [...document.querySelectorAll('#legend li')].map((li) => ({ id: Number(li.dataset.labelId),
          name: li.textContent.trim(), colour: li.dataset.colour,
          swatch: getComputedStyle(li.querySelector('.swatch')).backgroundColor })),
        legendBox: document.getElementById('legend').getBoundingClientRect().toJSON(),
        pageWidth: document.documentElement.scrollWidth,
        boxColours: window.webdet.detections.map((d) => ({ label_id: d.label_id, colour: leftEdge(d.box) })) };
    });
  }
  if (job.keyboard) {
    const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);
    result.tabOrder = [];
    for (let i = 0; i < 30; i += 1) result.tabOrder.push(await page.keyboard.press('Tab').then(focused));
    for (let i = 0; i < 30 && (await focused()) !== 'threshold'; i += 1) await page.keyboard.press('Tab');
    const before = (await state()).frames;
    for (const key of job.keyboard.keys) await page.keyboard.press(key);
    if (job.keyboard.frames) { // the camera loop: wait for frames detected at the new threshold
      await page.waitForFunction((n) => window.webdet.frames >= n || window.webdet.error, before + job.keyboard.frames);
    }
    const seen = async () => ({ focused: await focused(), threshold: Number(await page.inputValue('#threshold')),
      status: await page.textContent('#status'), state: await state() });
    result.afterKeys = await seen();
    if (job.keyboard.image) {
      await page.setInputFiles('#image-file', job.keyboard.image);
      await page.waitForFunction((n) => window.webdet.frames > n || window.webdet.error, result.afterKeys.state.frames);
      result.afterUpload = await seen();
    }
  }
  result.errorText = await page.textContent('#error');
  result.errorVisible = await page.isVisible('#error');
  result.status = await page.textContent('#status');
  result.backendText = await page.textContent('#backend-used');
  result.loads = navigations;
  result.crossOriginIsolated = await page.evaluate(() => window.crossOriginIsolated);
  const overlay = await page.$('#overlay');
  result.overlay = await overlay.boundingBox();
  result.video = await (await page.$('#video')).boundingBox();
  if (job.screenshot) await page.screenshot({ path: job.screenshot });
} catch (err) {
  result.failure = err.message;
  result.state = await state().catch(() => null);
}
result.consoleErrors = consoleErrors;
await (browser ?? context).close();
if (profile) fs.rmSync(profile, { recursive: true, force: true });
process.stdout.write(JSON.stringify(result));
