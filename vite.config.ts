// Builds the widget (widget/index.ts) into public/build/: widget.mjs (ES module) and widget.js
// (classic script exposing window.Checkstand), then writes manifest.json with SRI hashes and sizes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const outDir = path.resolve(import.meta.dirname, 'public/build');
const FILES = ['widget.js', 'widget.mjs'] as const;

/** After both outputs are written: manifest.json, whose version names the immutable URLs. */
function widgetManifest(): Plugin {
  return {
    name: 'checkstand-widget-manifest',
    apply: 'build',
    closeBundle() {
      const pkg = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, 'package.json'), 'utf8')) as { version: string };
      const bodies = FILES.map((f) => fs.readFileSync(path.join(outDir, f)));
      // The content hash is part of the version: a URL served as immutable must never change bytes,
      // even between two builds of one package version.
      const digest = crypto.createHash('sha256');
      bodies.forEach((b) => digest.update(b));
      const files = Object.fromEntries(FILES.map((f, i) => [f, {
        sri: `sha384-${crypto.createHash('sha384').update(bodies[i]).digest('base64')}`,
        bytes: bodies[i].length,
        gzip_bytes: zlib.gzipSync(bodies[i], { level: 9 }).length,
      }]));
      const manifest = { version: `${pkg.version}-${digest.digest('hex').slice(0, 10)}`, files };
      fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    },
  };
}

/**
 * Squeezes the whitespace out of the widget's html and css template literals (the minifier leaves
 * template text alone): the 7 KB gzip budget has no room for indentation.
 */
function compactTemplates(): Plugin {
  const squeeze = (text: string, tag: string) =>
    tag === 'css'
      ? text.replace(/\/\*[^]*?\*\//g, '').replace(/\s+/g, ' ').replace(/ ?([{}:;,>]) ?/g, '$1').replace(/;}/g, '}').trim()
      : text.replace(/>\s+</g, '><').replace(/\s+/g, ' ').trim();
  return {
    name: 'checkstand-compact-templates',
    // Before the TypeScript transform, which drops the /* css */ marker.
    enforce: 'pre',
    apply: 'build',
    transform(code, id) {
      if (!id.startsWith(path.resolve(import.meta.dirname, 'widget'))) return null;
      return code.replace(/(\/\* css \*\/ |\bhtml)`([^`]*)`/g, (_m, tag: string, text: string) => `${tag}\`${squeeze(text, tag === 'html' ? 'html' : 'css')}\``);
    },
  };
}

export default defineConfig({
  // public/ is served by Express, and the build lands inside it: Vite must not copy it around.
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir,
    emptyOutDir: true,
    minify: true,
    sourcemap: false,
    reportCompressedSize: false,
    // Vite keeps whitespace and annotations in library ES output (for re-bundling); this file is
    // served to browsers as is, so it is minified like the classic script.
    // No Symbol.toStringTag on the IIFE's export object either: nobody inspects it.
    rolldownOptions: { output: { minify: true, comments: false, generatedCode: { symbols: false } } },
    lib: {
      entry: path.resolve(import.meta.dirname, 'widget/index.ts'),
      name: 'Checkstand',
      formats: ['es', 'iife'],
      fileName: (format) => (format === 'es' ? 'widget.mjs' : 'widget.js'),
    },
  },
  plugins: [compactTemplates(), widgetManifest()],
});
