// Drives the built web app (a `webdet build-webapp` folder on a plain static server) in headless Chromium and
// prints, as JSON, what the page itself reports: the backend and wasm thread count it used, steady-state
// ms/frame on a fake camera, and time to first detection on a cold visit and on a second visit served from
// the service worker's cache.
//   node app.mjs PLAN.json
//   PLAN: {url, webapp_dir, chromium, y4m, image, runs: [{backend, threads, frames}], visits: bool}
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const require = createRequire(path.join(plan.webapp_dir, 'package.json'));
const { chromium } = require('playwright-core');

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${plan.y4m}`];
const LONG = 600000;

/** Waits for the app to be ready (or failed), through the one reload that makes a static page isolated. */
async function ready(page) {
  const deadline = Date.now() + LONG;
  while (Date.now() < deadline) {
    try {
      const state = await page.evaluate(() => window.webdet && { ready: window.webdet.ready, error: window.webdet.error });
      if (state?.error) throw new Error(`the app failed: ${state.error}`);
      if (state?.ready) return;
    } catch (err) {
      if (err.message.startsWith('the app failed')) throw err;
      // the page is navigating (the isolation reload): try again on the new document
    }
    await page.waitForTimeout(50);
  }
  throw new Error('the app did not become ready');
}

const snapshot = (page) => page.evaluate(() => ({
  isolated: self.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency,
  ...JSON.parse(JSON.stringify(window.webdet, (key, value) => (key === 'detections' ? undefined : value))),
}));

/** Steady ms/frame of the camera loop for one backend and thread count, in a fresh context. */
async function cameraRun(browser, { backend, threads, frames }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const query = new URLSearchParams({ backend, ...(threads ? { threads: String(threads) } : {}) });
  try {
    await page.goto(`${plan.url}?${query}`);
    await ready(page);
    await page.click('#start');
    await page.waitForFunction((n) => window.webdet.frames >= n || window.webdet.error, frames, { timeout: LONG });
    const state = await snapshot(page);
    if (state.error) return { requested: { backend, threads }, error: state.error };
    return { requested: { backend, threads }, backend: state.backend, threads: state.threads,
      isolated: state.isolated, frames: state.frames, steady_ms: state.steady_ms, fps: state.fps };
  } catch (err) {
    return { requested: { backend, threads }, error: err.message.split('\n')[0] };
  } finally {
    await context.close();
  }
}

/** One visit: navigation → ready → an uploaded image detected; the driver's clock and the page's own figures. */
async function visit(context, offline) {
  await context.setOffline(offline);
  const page = await context.newPage();
  const start = Date.now();
  await page.goto(plan.url);
  await ready(page);
  const readyAfter = Date.now() - start;
  await page.setInputFiles('#image-file', plan.image);
  await page.waitForFunction(() => window.webdet.frames >= 1 || window.webdet.error, null, { timeout: LONG });
  const firstDetection = Date.now() - start;
  const state = await snapshot(page);
  if (!offline) await page.waitForFunction(() => window.webdet.offlineReady === true, null, { timeout: LONG });
  await page.close();
  return { ready_ms: readyAfter, first_detection_ms: firstDetection, page_ttfd_ms: state.ttfd_ms,
    page_load_ms: state.load_ms, backend: state.backend, threads: state.threads, isolated: state.isolated,
    detections: state.frames >= 1 && !state.error, error: state.error };
}

/** Cold (empty profile), then from the service worker's cache, then from the cache with the network off. */
async function visits() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'webdet-bench-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: plan.chromium, headless: true, args: ARGS });
  try {
    return { cold: await visit(context, false), cached: await visit(context, false), offline: await visit(context, true) };
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

const browser = await chromium.launch({ executablePath: plan.chromium, headless: true, args: ARGS });
const results = { chromium: browser.version(), runs: [] };
try {
  for (const run of plan.runs) {
    const result = await cameraRun(browser, run);
    results.runs.push(result);
    process.stderr.write(`${run.backend} threads=${run.threads ?? 'auto'}: ${result.error ?? `${result.steady_ms?.toFixed(1)} ms`}\n`);
  }
} finally {
  await browser.close();
}
if (plan.visits) results.visits = await visits();
process.stdout.write(JSON.stringify(results));
