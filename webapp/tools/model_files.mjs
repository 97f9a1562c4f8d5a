// Loads a TF.js graph model (model.json + weight shards) from a folder in Node, where fetch of file
// paths is not available: the same artifacts the browser downloads, read from disk.
import fs from 'node:fs';
import path from 'node:path';

export function fileHandler(modelDir) {
  return {
    async load() {
      const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
      const specs = [];
      const buffers = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(modelDir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology, format: json.format, generatedBy: json.generatedBy,
        convertedBy: json.convertedBy, signature: json.signature, userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

/** The folder of the wasm binaries: node_modules beside the sources, or dist/ above the bundled tools. */
export function wasmDir(toolDir) {
  const installed = path.join(toolDir, '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  const beside = fs.existsSync(path.join(installed, 'tfjs-backend-wasm.wasm')) ? installed : path.join(toolDir, '..');
  return beside + path.sep;
}
