import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Router, type Request, type Response } from 'express';
import { ROOT } from '../root.ts';

/** public/build/manifest.json, written by vite.config.ts after each build. */
export interface WidgetManifest {
  version: string;
  files: Record<WidgetFile, { sri: string; bytes: number; gzip_bytes: number }>;
}
type WidgetFile = 'widget.js' | 'widget.mjs';

interface LoadedBuild {
  manifest: WidgetManifest;
  mtimeMs: number;
  files: Record<WidgetFile, { body: Buffer; gzip: Buffer; etag: string }>;
}

const DEFAULT_DIR = path.join(ROOT, 'public/build');
const FILES: WidgetFile[] = ['widget.js', 'widget.mjs'];
const SHORT_CACHE = 'public, max-age=300';
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * The embeddable widget: GET /widget.js and /widget.mjs (short cache: always the current build),
 * /widget/<version>/widget.js|.mjs (immutable: what merchants pin with integrity=), and
 * /widget/manifest.json (the version and SRI hashes). Mounted at the app root, outside the HTML
 * pages' CSP. 503 with a hint when the build is missing.
 */
export function createWidgetRoutes(opts: { dir?: string } = {}): Router {
  const dir = opts.dir ?? DEFAULT_DIR;
  const router = Router();
  let cached: LoadedBuild | undefined;

  // Read once per build: the manifest's mtime tells when `npm run build` ran again.
  function load(): LoadedBuild | undefined {
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(path.join(dir, 'manifest.json')).mtimeMs;
    } catch {
      return (cached = undefined);
    }
    if (cached?.mtimeMs === mtimeMs) return cached;
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as WidgetManifest;
      const files = Object.fromEntries(FILES.map((f) => {
        const body = fs.readFileSync(path.join(dir, f));
        return [f, { body, gzip: zlib.gzipSync(body, { level: 9 }), etag: `"${manifest.files[f].sri}"` }];
      })) as LoadedBuild['files'];
      return (cached = { manifest, mtimeMs, files });
    } catch {
      return (cached = undefined); // a build in progress: the next request tries again
    }
  }

  function notBuilt(res: Response) {
    res.status(503).set('Cache-Control', 'no-store').type('text/plain').send('The widget is not built: run npm run build\n');
  }

  // Every widget response may be loaded cross-origin: module scripts and integrity= need CORS,
  // and a merchant page under COEP needs CORP.
  router.use(['/widget.js', '/widget.mjs', '/widget'], (_req, res, next) => {
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin', 'X-Content-Type-Options': 'nosniff' });
    next();
  });

  function sendScript(req: Request, res: Response, file: WidgetFile, version?: string) {
    const build = load();
    if (!build) return notBuilt(res);
    // An immutable URL must never serve other bytes: only the current build's version exists.
    if (version !== undefined && version !== build.manifest.version) {
      return res.status(404).set('Cache-Control', 'no-store').type('text/plain').send(`No widget version ${version}; the current one is ${build.manifest.version} (see /widget/manifest.json)\n`);
    }
    const { body, gzip, etag } = build.files[file];
    res.set({ 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': version ? IMMUTABLE : SHORT_CACHE, ETag: etag, Vary: 'Accept-Encoding' });
    if (req.get('if-none-match') === etag) return res.status(304).end();
    const useGzip = /\bgzip\b/.test(req.get('accept-encoding') ?? '');
    if (useGzip) res.set('Content-Encoding', 'gzip');
    res.send(useGzip ? gzip : body);
  }

  router.get('/widget.js', (req, res) => sendScript(req, res, 'widget.js'));
  router.get('/widget.mjs', (req, res) => sendScript(req, res, 'widget.mjs'));
  router.get('/widget/manifest.json', (_req, res) => {
    const build = load();
    if (!build) return notBuilt(res);
    res.set('Cache-Control', 'public, max-age=60').json(build.manifest);
  });
  router.get('/widget/:version/:file', (req, res, next) => {
    const file = req.params.file as WidgetFile;
    if (!FILES.includes(file)) return next();
    sendScript(req, res, file, req.params.version);
  });
  return router;
}
