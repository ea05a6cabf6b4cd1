// npm run bench:size: builds the widget and prints its sizes; exits 1 when a file is over the
// 7 KB gzip budget (Lit included). A size check, not a test: sizes are not behaviour.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const BUDGET_GZIP_BYTES = 7 * 1024;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'public', 'build');

await build({ root, configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn' });
const manifest = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8')) as {
  version: string;
  files: Record<string, { bytes: number; gzip_bytes: number }>;
};

console.log(`widget ${manifest.version}   budget ${BUDGET_GZIP_BYTES} bytes gzipped`);
let over = false;
for (const [name, f] of Object.entries(manifest.files)) {
  const brotli = zlib.brotliCompressSync(fs.readFileSync(path.join(outDir, name))).length;
  const ok = f.gzip_bytes <= BUDGET_GZIP_BYTES;
  over ||= !ok;
  console.log(`${name.padEnd(11)} ${String(f.bytes).padStart(6)} B   gzip ${String(f.gzip_bytes).padStart(5)} B   brotli ${String(brotli).padStart(5)} B   ${ok ? 'ok' : 'OVER BUDGET'}`);
}
process.exitCode = over ? 1 : 0;
