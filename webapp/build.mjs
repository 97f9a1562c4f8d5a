// Bundle the app into dist/: one ES module, the stylesheet, the page and the wasm binaries, so it
// runs offline from any static host.
import { build } from 'esbuild';
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
for (const file of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) {
  fs.copyFileSync(path.join(wasmDir, file), path.join(dist, file));
}
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
