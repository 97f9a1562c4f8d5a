// Drives the app in headless Debian Chromium (playwright-core) and prints what it saw as JSON.
//   node test/e2e/drive.mjs '{"url": "...", "scenario": "camera|upload|denied", ...}'
// Scenarios: camera (fake webcam from a .y4m file), upload (an image file), denied (camera refused),
// load (just open the page, e.g. with a missing model).
import { chromium } from 'playwright-core';

const job = JSON.parse(process.argv[2]);
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream'];
if (job.scenario === 'camera') {
  args.push('--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${job.y4m}`);
}
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
const context = await browser.newContext({ viewport: job.viewport ?? { width: 1000, height: 760 } });
if (job.scenario === 'denied') await context.clearPermissions();
const page = await context.newPage();
const consoleErrors = [];
page.on('pageerror', (err) => consoleErrors.push(err.message));
const state = () => page.evaluate(() => JSON.parse(JSON.stringify(window.webdet)));
const result = { scenario: job.scenario };
try {
  await page.goto(job.url);
  await page.waitForFunction(() => window.webdet && (window.webdet.ready || window.webdet.error), null, { timeout: 120000 });
  if (job.scenario === 'camera') {
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
  } else if (job.scenario === 'denied') {
    await page.click('#start');
    await page.waitForFunction(() => window.webdet.error, null, { timeout: 60000 });
  }
  result.state = await state();
  result.errorText = await page.textContent('#error');
  result.errorVisible = await page.isVisible('#error');
  result.status = await page.textContent('#status');
  result.backendText = await page.textContent('#backend-used');
  const overlay = await page.$('#overlay');
  result.overlay = await overlay.boundingBox();
  result.video = await (await page.$('#video')).boundingBox();
  if (job.screenshot) await page.screenshot({ path: job.screenshot });
} catch (err) {
  result.failure = err.message;
  result.state = await state().catch(() => null);
}
result.consoleErrors = consoleErrors;
await browser.close();
process.stdout.write(JSON.stringify(result));
