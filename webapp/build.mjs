// Bundle the app into dist/: one ES module, the stylesheet, the page, the wasm binaries, the web app
// manifest and icons, and the service worker (sw.js, which isolates the page on any static host and caches
// the app for offline use), so it runs from any static host, and offline once loaded.
import { build } from 'esbuild';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const dist = 'dist';
fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(dist, { recursive: true });
await build({
  entryPoints: ['src/main.js'], bundle: true, format: 'esm', minify: true, sourcemap: true,
  outfile: path.join(dist, 'main.js'), target: ['es2020'], logLevel: 'warning',
});
fs.copyFileSync('index.html', path.join(dist, 'index.html'));
fs.copyFileSync('src/app.css', path.join(dist, 'app.css'));
const wasmDir = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
const wasmFiles = fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm')).sort();
for (const file of wasmFiles) {
  fs.copyFileSync(path.join(wasmDir, file), path.join(dist, file));
}
const icons = ['icon.svg', 'icon-192.png', 'icon-512.png'];
for (const file of ['manifest.webmanifest', ...icons]) fs.copyFileSync(file, path.join(dist, file));
// The service worker's app shell, and the build hash that names its cache: a new build (any shell file
// changed) installs a new worker, whose cache replaces the old one.
const shell = ['index.html', 'main.js', 'app.css', 'manifest.webmanifest', ...icons, ...wasmFiles];
const digest = crypto.createHash('sha256');
for (const file of shell) digest.update(`${file}\0`).update(fs.readFileSync(path.join(dist, file)));
const buildHash = digest.digest('hex').slice(0, 16);
const worker = fs.readFileSync('sw.js', 'utf8');
const shellList = /const SHELL = \[[^\]]*\];/;
if (!worker.includes("'__WEBDET_BUILD__'") || !shellList.test(worker)) throw new Error('sw.js: no build hash or SHELL to fill in');
fs.writeFileSync(path.join(dist, 'sw.js'), worker.replace("'__WEBDET_BUILD__'", JSON.stringify(buildHash))
  .replace(shellList, `const SHELL = ${JSON.stringify(shell)};`));
// The Node tools (the export's parity check) bundled with tfjs and the app's own pre/post-processing,
// so an installed webdet needs only `node` on PATH: they find the wasm binaries in dist/.
await build({
  entryPoints: ['tools/run_model.mjs', 'tools/execute_model.mjs'], bundle: true, format: 'esm', platform: 'node',
  outdir: path.join(dist, 'node'), outExtension: { '.js': '.mjs' }, target: ['node18'], minify: true,
  logLevel: 'error',
  banner: { js: ["import { createRequire as __webdetRequire } from 'node:module';",
    "import { dirname as __webdetDirname } from 'node:path';", "import { fileURLToPath as __webdetPath } from 'node:url';",
    'const require = __webdetRequire(import.meta.url);', 'const __filename = __webdetPath(import.meta.url);',
    'const __dirname = __webdetDirname(__filename);'].join(' ') },
});
console.log(`built ${dist}/ (${fs.readdirSync(dist).join(', ')})`);
