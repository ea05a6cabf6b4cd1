import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type express from 'express';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { createApp } from '../../server/app.ts';
import { OPERATIONS } from '../../server/openapi/operations.ts';
import { knownEventTypes } from '../../server/webhooks/service.ts';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';

/**
 * Operations documented before their route lands on this branch (the direct API's confirm).
 * Once every branch is merged this list is empty.
 */
const PENDING_ROUTES = new Set<string>();

interface Layer {
  rawPath?: string | RegExp | Array<string | RegExp>;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** Every route of the app as "METHOD /path/{param}", from Express's own router (router 2's layers). */
function routesOf(app: express.Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      const raws = [layer.rawPath ?? '/'].flat();
      for (const raw of raws) {
        if (typeof raw !== 'string') throw new Error(`a route path that is not a string: ${String(raw)}`);
        const here = raw === '/' ? prefix : prefix + raw;
        if (layer.route) {
          const p = (layer.route.path === '/' ? prefix || '/' : prefix + raw).replace(/:(\w+)/g, '{$1}');
          for (const [method, on] of Object.entries(layer.route.methods)) if (on) out.push(`${method.toUpperCase()} ${p}`);
        } else if (layer.handle.stack) {
          walk(layer.handle.stack, here);
        }
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return out;
}

const apiRoutesOf = (app: express.Express) => routesOf(app).filter((r) => r.split(' ')[1].startsWith('/v1/'));
const documented = OPERATIONS.map((op) => `${op.method.toUpperCase()} ${op.path}`);

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(() => g?.close());

describe('OpenAPI document', () => {
  it('documents every /v1 route, and routes every documented operation', () => {
    const routes = apiRoutesOf(createApp(g.deps));
    // The walk itself must see the routes, or the check below proves nothing.
    expect(routes).toEqual(expect.arrayContaining(['POST /v1/payments', 'GET /v1/payments/{id}', 'POST /v1/payments/{id}/refunds', 'DELETE /v1/webhook_endpoints/{id}', 'POST /v1/test_helpers/payments/{id}/simulate']));
    expect(routes.filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((d) => !routes.includes(d) && !PENDING_ROUTES.has(d))).toEqual([]);
  });

  it('the walk catches a route added later without an operation', () => {
    const app = createApp(g.deps);
    expect(apiRoutesOf(app)).not.toContain('GET /v1/payments/{id}/capture');
    app.get('/v1/payments/:id/capture', (_req, res) => res.end());
    expect(apiRoutesOf(app).filter((r) => !documented.includes(r))).toEqual(['GET /v1/payments/{id}/capture']);
  });

  it('is served without an API key, as OpenAPI 3.1 with every path, object, error and webhook', async () => {
    const res = await fetch(`${g.url}/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = (await res.json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers[0].url).toBe(g.deps.config.publicUrl);
    for (const op of OPERATIONS) {
      const o = doc.paths[op.path][op.method];
      expect(o.operationId).toBe(op.operationId);
      expect(o.responses['200']).toBeDefined();
      const idem = (o.parameters ?? []).some((p: any) => p.$ref === '#/components/parameters/IdempotencyKey');
      expect(idem).toBe(op.method === 'post');
      if (!op.public) for (const s of ['400', '401', '429', '500']) expect(o.responses[s].$ref).toBe(`#/components/responses/E${s}`);
    }
    expect(doc.paths['/v1/openapi.json'].get.security).toEqual([]);
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const name of ['Payment', 'Refund', 'Event', 'WebhookEndpoint', 'WebhookEndpointWithSecret', 'WebhookDelivery', 'PaymentList', 'EventList', 'Error', 'NextAction', 'AttemptError']) {
      expect(doc.components.schemas[name], name).toBeDefined();
    }
    expect(Object.keys(doc.webhooks).sort()).toEqual([...knownEventTypes].sort());
    expect(doc.webhooks['payment.succeeded'].post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/PaymentSucceededEvent');
    // Every $ref points at something the document has.
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    for (const ref of new Set(refs)) {
      const pointer = JSON.parse(`{${ref}}`).$ref as string;
      const target = pointer.slice(2).split('/').reduce((n: any, k) => n?.[k], doc);
      expect(target, pointer).toBeDefined();
    }
  });

  it('is a valid OpenAPI 3.1 document (Redocly\'s recommended rules find no error)', async () => {
    const source = await (await fetch(`${g.url}/v1/openapi.json`)).text();
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source, absoluteRef: 'openapi.json', config });
    const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`);
    expect(errors).toEqual([]);
    // A broken document does fail the lint, so the check above can fail.
    const broken = JSON.parse(source);
    broken.paths['/v1/payments'].post.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/Nope' };
    broken.paths['/v1/payments'].post.parameters.push({ name: 'x' });
    const brokenProblems = await lintFromString({ source: JSON.stringify(broken), absoluteRef: 'openapi.json', config });
    expect(brokenProblems.some((p) => p.severity === 'error')).toBe(true);
  });

  it('serves /docs and its assets from the gateway, under a CSP of its own origin alone', async () => {
    const page = await fetch(`${g.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const csp = page.headers.get('content-security-policy')!;
    expect(csp.split(';').map((d) => d.trim())).toEqual(expect.arrayContaining([
      "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'",
    ]));
    expect(csp).not.toMatch(/unsafe|https?:/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    // Every script and stylesheet the page names is one of the gateway's, and is there.
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBe(3);
    for (const a of assets) {
      expect(a.startsWith('/docs/')).toBe(true);
      expect((await fetch(g.url + a)).status, a).toBe(200);
    }
    expect(html).not.toMatch(/<script>|<style>|style="/);
  });

  it('describes the request parameters from the routes’ own schemas', async () => {
    const doc = (await (await fetch(`${g.url}/v1/openapi.json`)).json()) as any;
    const create = doc.paths['/v1/payments'].post.requestBody;
    expect(create.required).toBe(true);
    expect(create.content['application/json'].schema.required).toEqual(['amount', 'subject', 'out_trade_no']);
    expect(create.content['application/json'].schema.additionalProperties).toBe(false);
    expect(create.content['application/json'].schema.properties.amount).toMatchObject({ type: 'integer', minimum: 1 });
    const list = doc.paths['/v1/payments'].get.parameters.map((p: any) => p.name);
    expect(list).toEqual(expect.arrayContaining(['limit', 'starting_after', 'ending_before', 'status', 'channel', 'out_trade_no', 'created[gte]', 'created[lte]']));
    expect(doc.paths['/v1/payments/{id}'].get.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: 64 } }]);
    const confirm = doc.paths['/v1/payments/{id}/confirm'].post.requestBody.content['application/json'].schema;
    expect(confirm.required).toEqual(['channel']);
    expect(Object.keys(confirm.properties).sort()).toEqual(['channel', 'client_ip', 'openid']);
    const nextAction = doc.components.schemas.NextAction.oneOf.map((s: any) => s.properties.type.const).sort();
    expect(nextAction).toEqual(['alipay_app', 'display_qr_code', 'post_form', 'redirect_to_url', 'wechat_app', 'wechat_jsapi']);
    expect(doc.components.schemas.Payment.required).toEqual(expect.arrayContaining(['next_action', 'last_attempt_error']));
  });
});
