import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb } from '../../server/db.ts';
import { sha256Hex } from '../../server/crypto.ts';
import { chooseEntry } from '../../bin/entry.js';

const run = promisify(execFile);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-cli-'));
const env = { ...process.env, DATABASE_URL: `sqlite:${path.join(dir, 'cli.db')}`, CHECKSTAND_DATA_DIR: dir, LOG_LEVEL: 'silent' };
const cli = (args: string[], extraEnv: Record<string, string> = {}) =>
  run(process.execPath, ['bin/checkstand.js', ...args], { env: { ...env, ...extraEnv } });

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// bin/checkstand.js runs dist/ when it is built and current (npm test builds first), else the
// sources through tsx; the suite's name says which one these tests exercise, and why.
const entry = chooseEntry();
const entryName = entry.compiled ? 'the compiled server in dist/' : `the TypeScript sources (${entry.reason})`;

describe(`checkstand command, running ${entryName}`, () => {
  it('app create --json prints the keys once and stores only their hashes', async () => {
    const { stdout } = await cli(['app', 'create', '--name', 'Shop', '--origin', 'https://shop.example', '--json']);
    const out = JSON.parse(stdout);
    expect(out.app_id).toMatch(/^app_/);
    expect(out.secret_key).toMatch(/^sk_test_/);
    expect(out.live_secret_key).toMatch(/^sk_live_/);
    const db = createDb(env.DATABASE_URL);
    try {
      const keys = await db('api_keys').where({ app_id: out.app_id });
      expect(keys.map((k) => k.key_hash).sort()).toEqual([sha256Hex(out.secret_key), sha256Hex(out.live_secret_key)].sort());
      const app = await db('apps').where({ id: out.app_id }).first();
      expect(JSON.parse(app.allowed_origins)).toEqual(['https://shop.example']);
    } finally {
      await db.destroy();
    }
  });

  it('channel set stores the config encrypted and refuses a bad one', async () => {
    const { stdout } = await cli(['app', 'create', '--name', 'Shop2', '--json']);
    const { app_id } = JSON.parse(stdout);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ app_id: '2021000000000000' }));
    await expect(cli(['channel', 'set', '--app', app_id, '--channel', 'alipay', '--mode', 'live', '--config', bad])).rejects.toMatchObject({ code: 1 });
    const crypto = await import('node:crypto');
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const good = path.join(dir, 'good.json');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    fs.writeFileSync(good, JSON.stringify({ app_id: '2021000000000000', private_key: pem, alipay_public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString() }));
    const ok = await cli(['channel', 'set', '--app', app_id, '--channel', 'alipay', '--mode', 'live', '--config', good]);
    expect(ok.stdout).toContain('encrypted');
    expect(ok.stdout).not.toContain('PRIVATE KEY');
    const db = createDb(env.DATABASE_URL);
    try {
      const row = await db('channel_configs').where({ app_id, provider: 'alipay' }).first();
      expect(row.config_sealed).not.toContain('PRIVATE');
      expect(row.config_sealed).not.toContain('2021000000000000');
    } finally {
      await db.destroy();
    }
  });

  it('app create --origin names a bad value and says what an origin looks like, creating nothing', async () => {
    // One process start: the other shapes are parseOrigin's unit test.
    const err = await cli(['app', 'create', '--name', 'Bad origin', '--origin', 'https://ok.example', '--origin', 'not a url', '--json']).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('--origin "not a url" is not an origin');
    expect(err.stderr).toContain('such as https://shop.example.com');
    expect(err.stderr).not.toMatch(/Invalid URL|TypeError/);
    const db = createDb(env.DATABASE_URL);
    try {
      expect(await db('apps').where({ name: 'Bad origin' })).toHaveLength(0);
    } finally {
      await db.destroy();
    }
  });

  it('key roll prints the new secret once, keeps the old key for --expires-in, and refuses a bad duration', async () => {
    const { stdout } = await cli(['app', 'create', '--name', 'Keys', '--json']);
    const app = JSON.parse(stdout);
    const rolled = JSON.parse((await cli(['key', 'roll', '--app', app.app_id, '--mode', 'test', '--expires-in', '1h', '--json'])).stdout);
    expect(rolled.secret_key).toMatch(/^sk_test_/);
    expect(rolled.secret_key).not.toBe(app.secret_key);
    const before = Math.floor(Date.now() / 1000);
    expect(Math.abs(rolled.rolled_expires_at - (before + 3600))).toBeLessThanOrEqual(5);
    const list = (await cli(['key', 'list', '--app', app.app_id, '--mode', 'test'])).stdout;
    expect(list).toMatch(new RegExp(`${rolled.rolled}\\s+test\\s+\\S+\\s+expiring\\s+until `));
    expect(list).toMatch(new RegExp(`${rolled.key}\\s+test\\s+\\S+\\s+active`));
    expect(list).not.toContain(rolled.secret_key);
    const db = createDb(env.DATABASE_URL);
    try {
      const row = await db('api_keys').where({ id: rolled.key }).first();
      expect(row.key_hash).toBe(sha256Hex(rolled.secret_key));
      const bad = await cli(['key', 'roll', '--app', app.app_id, '--mode', 'test', '--expires-in', '8d']).catch((e) => e);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--expires-in may be at most 7d');
      // Nothing changed: still the same two keys, the new one not rolled.
      expect((await db('api_keys').where({ app_id: app.app_id, livemode: false })).map((k) => [k.id, k.rolled_to]).sort())
        .toEqual([[rolled.key, null], [rolled.rolled, rolled.key]].sort());
    } finally {
      await db.destroy();
    }
  });

  it('refuses to start on invalid configuration with a one-line reason', async () => {
    const err = await cli(['serve'], { PORT: 'abc' }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr.trim().split('\n')).toHaveLength(1);
    expect(err.stderr).toContain('PORT');
    const err2 = await cli(['migrate'], { DATABASE_URL: 'mysql://x' }).catch((e) => e);
    expect(err2.stderr).toContain('DATABASE_URL');
  });

  it('serve migrates an empty database and serves the templates and assets of the package root', async () => {
    const child = spawn(process.execPath, ['bin/checkstand.js', 'serve'], {
      env: { ...env, DATABASE_URL: `sqlite:${path.join(dir, 'serve.db')}`, PORT: '0', CHECKSTAND_DEMO: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', () => {
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m && out.includes('Demo shop')) resolve(m[1]);
        });
        void exited.then(() => reject(new Error(`serve exited: ${out}`)));
      });
      const login = await fetch(`${url}/console/login`);
      expect(login.status).toBe(200);
      expect(await login.text()).toContain('name="password"');
      const css = await fetch(`${url}/assets/cashier.css`);
      expect(css.status).toBe(200);
      expect(await css.text()).toBe(fs.readFileSync('public/assets/cashier.css', 'utf8'));
      // The banner says when the sources run instead of dist/.
      expect(out.includes('Running the TypeScript sources through tsx')).toBe(!entry.compiled);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('which code bin/checkstand.js runs', () => {
  const root = fs.mkdtempSync(path.join(dir, 'entry-'));
  const main = path.join(root, 'dist/server/cli/main.js');
  const source = path.join(root, 'server/cli/main.ts');
  const at = (file: string, seconds: number) => fs.utimesSync(file, seconds, seconds);

  it('the sources without a build, dist/ once built, the sources again after an edit', () => {
    fs.mkdirSync(path.dirname(source), { recursive: true });
    fs.writeFileSync(source, '');
    at(source, 1_000);
    expect(chooseEntry(root)).toEqual({ compiled: false, reason: 'no build in dist/' });
    fs.mkdirSync(path.dirname(main), { recursive: true });
    fs.writeFileSync(main, '');
    at(main, 2_000);
    expect(chooseEntry(root)).toEqual({ compiled: true, url: `file://${main}` });
    const migration = path.join(root, 'migrations/007_next.ts');
    fs.mkdirSync(path.dirname(migration));
    fs.writeFileSync(migration, '');
    at(migration, 3_000);
    expect(chooseEntry(root)).toEqual({ compiled: false, reason: 'migrations/007_next.ts is newer than the build in dist/' });
  });
});

describe('configuration', () => {
  it('reads TRUST_PROXY as false, a hop count or a list, and refuses junk naming it', async () => {
    const { loadConfig } = await import('../../server/config.ts');
    const base = { CHECKSTAND_DATA_DIR: dir, CHECKSTAND_MASTER_KEY: 'a'.repeat(64) };
    expect(loadConfig(base).trustProxy).toBe(false);
    expect(loadConfig({ ...base, TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ ...base, TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toEqual(['loopback', '10.0.0.0/8']);
    expect(() => loadConfig({ ...base, TRUST_PROXY: '$(rm -rf)' })).toThrow(/TRUST_PROXY/);
    expect(() => loadConfig({ ...base, CHECKSTAND_MASTER_KEY: 'short' })).toThrow(/CHECKSTAND_MASTER_KEY/);
  });

  it('mounts the simulators unless CHECKSTAND_SANDBOX is false, and refuses junk naming it', async () => {
    const { loadConfig } = await import('../../server/config.ts');
    const base = { CHECKSTAND_DATA_DIR: dir, CHECKSTAND_MASTER_KEY: 'a'.repeat(64) };
    expect(loadConfig(base).sandbox).toBe(true);
    expect(loadConfig({ ...base, CHECKSTAND_SANDBOX: 'false' }).sandbox).toBe(false);
    expect(() => loadConfig({ ...base, CHECKSTAND_SANDBOX: 'off' })).toThrow(/^CHECKSTAND_SANDBOX: /);
  });
});
