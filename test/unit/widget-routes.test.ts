import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWidgetRoutes } from '../../server/widget/routes.ts';

// A fake build, so these tests need no Vite run: the routes serve whatever the manifest names.
function fakeBuild(dir: string, version: string) {
  const files: Record<string, { sri: string; bytes: number; gzip_bytes: number }> = {};
  for (const f of ['widget.js', 'widget.mjs']) {
    const body = Buffer.from(`/* ${f} ${version} */ window.x = 1;\n`);
    fs.writeFileSync(path.join(dir, f), body);
    files[f] = { sri: `sha384-${crypto.createHash('sha384').update(body).digest('base64')}`, bytes: body.length, gzip_bytes: zlib.gzipSync(body).length };
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ version, files }));
  return files;
}

async function serve(dir: string): Promise<{ url: string; server: Server }> {
  const app = express();
  app.use(createWidgetRoutes({ dir }));
  app.use((_req, res) => res.status(404).send('next'));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('widget routes', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-widget-'));
  const built = path.join(tmp, 'built');
  const missing = path.join(tmp, 'missing');
  let a: { url: string; server: Server };
  let b: { url: string; server: Server };
  let files: ReturnType<typeof fakeBuild>;

  beforeAll(async () => {
    fs.mkdirSync(built);
    files = fakeBuild(built, '1.2.3-abc');
    a = await serve(built);
    b = await serve(missing);
  });
  afterAll(() => {
    a?.server.close();
    b?.server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the classic script with a short cache, CORS and its SRI-matching bytes', async () => {
    const res = await fetch(`${a.url}/widget.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    const body = Buffer.from(await res.arrayBuffer()); // fetch decodes the gzip
    expect(`sha384-${crypto.createHash('sha384').update(body).digest('base64')}`).toBe(files['widget.js'].sri);
    expect(res.headers.get('etag')).toBe(`"${files['widget.js'].sri}"`);
    const again = await fetch(`${a.url}/widget.js`, { headers: { 'if-none-match': res.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it('serves the versioned files as immutable, and refuses other versions', async () => {
    for (const f of ['widget.js', 'widget.mjs']) {
      const res = await fetch(`${a.url}/widget/1.2.3-abc/${f}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(await res.text()).toContain(`${f} 1.2.3-abc`);
    }
    const old = await fetch(`${a.url}/widget/1.2.2-xyz/widget.js`);
    expect(old.status).toBe(404);
    expect(old.headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${a.url}/widget/1.2.3-abc/other.js`)).status).toBe(404);
  });

  it('gzips for clients that accept it', async () => {
    const res = await fetch(`${a.url}/widget.mjs`, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(res.headers.get('vary')).toBe('Accept-Encoding');
    expect(await res.text()).toContain('widget.mjs');
  });

  it('serves the manifest', async () => {
    const res = await fetch(`${a.url}/widget/manifest.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({ version: '1.2.3-abc', files });
  });

  it('answers 503 with a hint when the widget is not built', async () => {
    for (const p of ['/widget.js', '/widget.mjs', '/widget/manifest.json', '/widget/1.2.3-abc/widget.js']) {
      const res = await fetch(b.url + p);
      expect(res.status).toBe(503);
      expect(await res.text()).toBe('The widget is not built: run npm run build\n');
    }
  });
});
