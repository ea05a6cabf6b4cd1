import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebhookEndpointRoutes } from '../../server/webhooks/routes.ts';
import { createEndpoint } from '../../server/webhooks/service.ts';
import { createEventRoutes } from '../../server/events/routes.ts';
import { insertEvent } from '../../server/events/repo.ts';
import { apiErrorHandler } from '../../server/http/errors.ts';
import { unseal } from '../../server/crypto.ts';
import type { Deps } from '../../server/deps.ts';
import { insertApp, makeDeps, openTestDb, type TestDb } from './webhook-helpers.ts';

// The routes mounted as the core mounts them, with a stand-in for api-key auth: these tests are
// about the endpoints and events APIs, not about keys.
let tdb: TestDb;
let server: http.Server;
let base: string;
let appA: string;
let appB: string;
let deps: Deps;
let privateDeps: Deps;

function mount(d: Deps): express.Express {
  const app = express();
  app.set('query parser', 'simple');
  const api = express.Router();
  api.use(express.json());
  api.use((req, res, next) => {
    res.locals.requestId = 'req_test';
    res.locals.auth = { appId: req.get('x-test-app'), livemode: req.get('x-test-live') === '1' };
    next();
  });
  api.use('/webhook_endpoints', createWebhookEndpointRoutes(d));
  api.use('/events', createEventRoutes(d));
  api.use(apiErrorHandler(d.logger));
  app.use('/v1', api);
  return app;
}

beforeAll(async () => {
  tdb = await openTestDb();
  deps = makeDeps(tdb.db);
  privateDeps = { ...deps, config: { ...deps.config, allowPrivateWebhooks: true } };
  appA = await insertApp(tdb.db, 'A');
  appB = await insertApp(tdb.db, 'B');
  const root = express();
  root.use('/private', mount(privateDeps));
  root.use(mount(deps));
  server = root.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await tdb.close();
});

async function call(method: string, path: string, opts: { app?: string; live?: boolean; body?: unknown } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', 'x-test-app': opts.app ?? appA, 'x-test-live': opts.live ? '1' : '0' },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('/v1/webhook_endpoints', () => {
  it('creates an endpoint and shows its secret only once', async () => {
    const res = await call('POST', '/v1/webhook_endpoints', { body: { url: 'https://shop.example.com/hooks' } });
    expect(res.status).toBe(200);
    const ep = res.body;
    expect(ep).toMatchObject({ object: 'webhook_endpoint', livemode: false, url: 'https://shop.example.com/hooks', enabled_events: ['*'], status: 'enabled' });
    expect(ep.id).toMatch(/^we_/);
    expect(ep.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(typeof ep.created).toBe('number');

    const row = await tdb.db('webhook_endpoints').where({ id: ep.id }).first();
    expect(row.secret_sealed).not.toContain(ep.secret.slice(6));
    expect(unseal(deps.config.masterKeyBytes, row.secret_sealed, ep.id)).toBe(ep.secret);

    const got = await call('GET', `/v1/webhook_endpoints/${ep.id}`);
    expect(got.status).toBe(200);
    expect(got.body.secret).toBeUndefined();
    const { secret: _s, ...rest } = ep;
    expect(got.body).toEqual(rest);

    const list = await call('GET', '/v1/webhook_endpoints');
    expect(list.body).toMatchObject({ object: 'list', url: '/v1/webhook_endpoints' });
    expect(list.body.data.map((e: any) => e.id)).toContain(ep.id);
    for (const e of list.body.data) expect(e.secret).toBeUndefined();
  });

  it('accepts chosen event types', async () => {
    const res = await call('POST', '/v1/webhook_endpoints', { body: { url: 'http://localhost:4000/h', enabled_events: ['refund.succeeded', 'payment.succeeded', 'refund.succeeded'] } });
    expect(res.status).toBe(200);
    expect(res.body.enabled_events).toEqual(['refund.succeeded', 'payment.succeeded']);
  });

  it.each([
    [{}, 'url', 'parameter_missing'],
    [{ url: 'ftp://example.com/x' }, 'url', 'url_invalid'],
    [{ url: 'not a url' }, 'url', 'url_invalid'],
    [{ url: 'https://user:pw@example.com/' }, 'url', 'url_invalid'],
    [{ url: 'https://example.com/' + 'a'.repeat(2048) }, 'url', 'parameter_invalid'],
    [{ url: 42 }, 'url', 'parameter_invalid'],
    [{ url: 'https://example.com', enabled_events: ['payment.nope'] }, 'enabled_events[0]', 'parameter_invalid'],
    [{ url: 'https://example.com', enabled_events: [] }, 'enabled_events', 'parameter_invalid'],
    [{ url: 'https://example.com', enabled_events: 'payment.succeeded' }, 'enabled_events', 'parameter_invalid'],
    [{ url: 'https://example.com', enabled_events: ['*', 'refund.failed'] }, 'enabled_events', 'parameter_invalid'],
    [{ url: 'https://example.com', description: 'x' }, 'description', 'parameter_unknown'],
  ])('refuses %j with a 400 naming %s', async (body, param, code) => {
    const res = await call('POST', '/v1/webhook_endpoints', { body });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param, code });
  });

  it.each([
    'http://127.0.0.1/h', 'http://localhost:3000/h', 'http://api.localhost/h', 'http://169.254.169.254/latest/meta-data', 'http://10.1.2.3/',
    'http://192.168.1.1/', 'http://172.20.0.1/', 'http://[::1]/', 'http://[fd00:ec2::254]/', 'http://[::ffff:127.0.0.1]/',
    'http://2130706433/', 'http://0x7f.1/', 'http://0.0.0.0/', 'http://metadata.google.internal/',
  ])('refuses the private target %s in live mode', async (url) => {
    const res = await call('POST', '/v1/webhook_endpoints', { live: true, body: { url } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ param: 'url', code: 'url_not_allowed' });
  });

  it('allows private targets in test mode, or in live mode when the operator allows them', async () => {
    expect((await call('POST', '/v1/webhook_endpoints', { body: { url: 'http://127.0.0.1:9/h' } })).status).toBe(200);
    expect((await call('POST', '/private/v1/webhook_endpoints', { live: true, body: { url: 'http://127.0.0.1:9/h' } })).status).toBe(200);
    const pub = await call('POST', '/v1/webhook_endpoints', { live: true, body: { url: 'https://8.8.8.8/h' } });
    expect(pub.status).toBe(200);
    expect(pub.body.livemode).toBe(true);
  });

  it('hides other apps’ and the other mode’s endpoints', async () => {
    const { endpoint } = await createEndpoint(deps, { appId: appB, livemode: false }, { url: 'https://b.example.com/h' });
    expect((await call('GET', `/v1/webhook_endpoints/${endpoint.id}`)).status).toBe(404);
    expect((await call('GET', `/v1/webhook_endpoints/${endpoint.id}`, { app: appB, live: true })).status).toBe(404);
    expect((await call('DELETE', `/v1/webhook_endpoints/${endpoint.id}`)).status).toBe(404);
    expect((await call('GET', '/v1/webhook_endpoints')).body.data.map((e: any) => e.id)).not.toContain(endpoint.id);
    expect((await call('GET', `/v1/webhook_endpoints?starting_after=${endpoint.id}`)).status).toBe(400);
    expect((await call('GET', `/v1/webhook_endpoints/${endpoint.id}`, { app: appB })).status).toBe(200);
  });

  it('soft-deletes', async () => {
    const { endpoint } = await createEndpoint(deps, { appId: appA, livemode: false }, { url: 'https://a.example.com/del' });
    const del = await call('DELETE', `/v1/webhook_endpoints/${endpoint.id}`);
    expect(del).toEqual({ status: 200, body: { id: endpoint.id, object: 'webhook_endpoint', deleted: true } });
    expect((await call('GET', `/v1/webhook_endpoints/${endpoint.id}`)).status).toBe(404);
    expect((await call('DELETE', `/v1/webhook_endpoints/${endpoint.id}`)).status).toBe(404);
    expect((await tdb.db('webhook_endpoints').where({ id: endpoint.id }).first()).deleted_at).toBeGreaterThan(0);
  });

  it('pages with limit and starting_after', async () => {
    const appC = await insertApp(tdb.db, 'C');
    for (let i = 0; i < 3; i++) await createEndpoint(deps, { appId: appC, livemode: false }, { url: `https://c.example.com/${i}` });
    const first = await call('GET', '/v1/webhook_endpoints?limit=2', { app: appC });
    expect(first.body.data).toHaveLength(2);
    expect(first.body.has_more).toBe(true);
    const second = await call('GET', `/v1/webhook_endpoints?limit=2&starting_after=${first.body.data[1].id}`, { app: appC });
    expect(second.body.data).toHaveLength(1);
    expect(second.body.has_more).toBe(false);
    const bad = await call('GET', '/v1/webhook_endpoints?limit=500', { app: appC });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('limit');
  });
});

describe('/v1/events', () => {
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    const put = async (key: string, appId: string, livemode: boolean, type: any, created: number) => {
      const e = await tdb.db.transaction((trx) => insertEvent(trx, { appId, livemode, type, object: { id: `obj_${key}` } }));
      await tdb.db('events').where({ id: e.id }).update({ created });
      ids[key] = e.id;
    };
    await put('a1', appA, false, 'payment.succeeded', 1000);
    await put('a2', appA, false, 'refund.succeeded', 2000);
    await put('a3', appA, false, 'payment.closed', 3000);
    await put('aLive', appA, true, 'payment.succeeded', 2500);
    await put('b1', appB, false, 'payment.succeeded', 2500);
  });

  const listIds = async (query = '', opts: { app?: string; live?: boolean } = {}) => {
    const res = await call('GET', `/v1/events${query}`, opts);
    expect(res.status).toBe(200);
    return res.body.data.map((e: any) => e.id);
  };

  it('lists the caller’s events of its mode, newest first', async () => {
    expect(await listIds()).toEqual([ids.a3, ids.a2, ids.a1]);
    expect(await listIds('', { live: true })).toEqual([ids.aLive]);
    expect(await listIds('', { app: appB })).toEqual([ids.b1]);
  });

  it('filters by type and created range', async () => {
    expect(await listIds('?type=payment.succeeded')).toEqual([ids.a1]);
    expect(await listIds('?type=payment.*')).toEqual([ids.a3, ids.a1]);
    expect(await listIds('?created[gte]=2000')).toEqual([ids.a3, ids.a2]);
    expect(await listIds('?created[lte]=2000')).toEqual([ids.a2, ids.a1]);
    expect(await listIds('?created%5Bgte%5D=1500&created%5Blte%5D=2500')).toEqual([ids.a2]);
    expect(await listIds('?created[gt]=1000&created[lt]=3000')).toEqual([ids.a2]);
    expect(await listIds('?created=3000')).toEqual([ids.a3]);
    expect(await listIds('?limit=1&starting_after=' + ids.a3)).toEqual([ids.a2]);
  });

  it('refuses bad filters naming the parameter', async () => {
    for (const [q, param] of [['?created[gte]=soon', 'created[gte]'], ['?created[lte]=', 'created[lte]'], ['?created=1&created=2', 'created'], ['?type=DROP TABLE', 'type'], ['?colour=red', 'colour'], ['?limit=0', 'limit']]) {
      const res = await call('GET', `/v1/events${q}`);
      expect(res.status).toBe(400);
      expect(res.body.error.param).toBe(param);
    }
  });

  it('retrieves one event, and 404s for another app’s or mode’s', async () => {
    const res = await call('GET', `/v1/events/${ids.a2}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: ids.a2, object: 'event', type: 'refund.succeeded', created: 2000, livemode: false, data: { object: { id: 'obj_a2' } } });
    expect((await call('GET', `/v1/events/${ids.b1}`)).status).toBe(404);
    expect((await call('GET', `/v1/events/${ids.aLive}`)).status).toBe(404);
    expect((await call('GET', '/v1/events/evt_nope')).body.error).toMatchObject({ code: 'resource_missing', param: 'id' });
  });
});
