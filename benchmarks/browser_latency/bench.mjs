// Drives headless Chromium (playwright-core, the system's /usr/bin/chromium) through page.html for
// every (model, backend) pair of a plan and prints the results as JSON.
//   node bench.mjs PLAN.json   PLAN: {url, webapp_dir, chromium, runs: [{name, modelUrl, kind, backend, frames, warmup, metadata}]}
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
// playwright-core is a dependency of the web app; resolve it from there.
const require = createRequire(path.join(plan.webapp_dir, 'package.json'));
const { chromium } = require('playwright-core');

const browser = await chromium.launch({
  executablePath: plan.chromium,
  args: ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-features=SharedArrayBuffer'],
});
const results = [];
try {
  for (const run of plan.runs) {
    const page = await browser.newPage();  // a fresh page per run: no backend state carries over
    await page.goto(plan.url);
    await page.waitForFunction(() => window.webdetReady === true);
    const started = Date.now();
    const result = await page.evaluate((r) => window.webdetBench(r), run);
    results.push({ name: run.name, kind: run.kind, requested: run.backend, seconds: (Date.now() - started) / 1000, ...result });
    process.stderr.write(`${run.name} ${run.backend}: ${result.error ?? `${result.median_ms.toFixed(1)} ms`}\n`);
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ chromium: browser.version(), results }));
