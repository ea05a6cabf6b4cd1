import { z } from 'zod';
import { knownEventTypes } from '../webhooks/service.ts';
import { EVENT_DATA_SCHEMAS, eventSchemaId } from '../events/schema.ts';
import { errorObjectSchema, OPERATIONS, type Operation } from './operations.ts';

/**
 * The OpenAPI 3.1 document of /v1, built from OPERATIONS: request parts from the schemas the
 * routes validate with (zod's JSON Schema of their input side), answers from the object schemas
 * (their output side) as components. Nothing here is written by hand but prose.
 */

type Json = Record<string, any>;

const schemaRef = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const idOf = (schema: z.ZodType): string | undefined => z.globalRegistry.get(schema)?.id as string | undefined;

/** zod's .int() bound, noise in a document. */
const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Cleans zod's JSON Schema for the document: no $schema/$id on embedded schemas, no safe-integer
 * bounds; on answers (`open`), no additionalProperties: false, since new fields may be added to
 * an object without a new version (requests stay closed: an unknown parameter is refused).
 */
function tidy(node: unknown, open: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => tidy(n, open));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    if (k === '$schema' || k === '$id') continue;
    if ((k === 'maximum' && v === SAFE) || (k === 'minimum' && v === -SAFE)) continue;
    if (open && k === 'additionalProperties' && v === false) continue;
    out[k] = tidy(v, open);
  }
  return out;
}

/** A request schema's JSON Schema (what the caller sends: defaults apply, transforms not yet). */
function inputSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as Json;
  if (json.$defs) throw new Error('request schemas are inlined: none may carry a registered id');
  return tidy(json, false) as Json;
}

function queryParameters(query: z.ZodObject): Json[] {
  const json = inputSchema(query);
  const required = new Set<string>(json.required ?? []);
  return Object.entries((json.properties ?? {}) as Record<string, Json>).map(([name, schema]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema,
  }));
}

const pathParameters = (path: string): Json[] =>
  [...path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: { type: 'string', maxLength: 64 } }));

const ERROR_RESPONSES: Record<number, string> = {
  400: 'Bad input: `error.param` names the parameter. Nothing was changed. Also a reused Idempotency-Key with other parameters (`idempotency_error`).',
  401: 'No API key, or not a valid one (`authentication_error`).',
  402: "The channel refused the request (`channel_error`), or the customer's balance is too low (`balance_insufficient`). Nothing was changed.",
  404: 'No such object for this app and mode (`resource_missing`).',
  409: 'A request with this Idempotency-Key is still running, or was interrupted (`idempotency_error`).',
  429: 'Too many requests for this key: retry after the time in Retry-After.',
  500: 'An internal error (`api_error`); a retry with the same Idempotency-Key is safe.',
  502: 'The channel could not be reached, or answered with a bad signature (`channel_error`); retry with the same Idempotency-Key.',
};

function operationObject(op: Operation): Json {
  const parameters = [...pathParameters(op.path), ...(op.query ? queryParameters(op.query) : [])];
  if (op.method === 'post') parameters.push({ $ref: '#/components/parameters/IdempotencyKey' });
  const responseId = idOf(op.response);
  const statuses = op.public ? [] : [400, 401, 429, 500, ...(op.method === 'post' ? [409] : []), ...(op.errors ?? [])];
  const responses: Json = {
    200: {
      description: 'OK',
      content: { 'application/json': { schema: responseId ? schemaRef(responseId) : tidy(z.toJSONSchema(op.response, { io: 'output' }), true) } },
    },
  };
  for (const status of [...new Set(statuses)].sort()) responses[status] = { $ref: `#/components/responses/E${status}` };
  const out: Json = {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(op.public ? { security: [] } : {}),
    ...(parameters.length ? { parameters } : {}),
    responses,
  };
  if (op.body) {
    const schema = inputSchema(op.body);
    out.requestBody = { required: Boolean(schema.required?.length), content: { 'application/json': { schema } } };
  }
  return out;
}

const TAGS: Record<Operation['tag'], string> = {
  Payments: 'Payments: created by your server, paid on the hosted cashier or, with a channel, straight from your page or app.',
  Refunds: 'Refunds of succeeded payments, in full or in part.',
  Customers: "Customers and their stored-value balance (账户余额), changed only by ledger entries: top-ups, payments with channel balance, their refunds, adjustments.",
  Coupons: 'Discount codes: a fixed amount or a percentage off, with limits that hold under concurrency.',
  Agreements: 'Auto-debit mandates the customer signs in the wallet, for charges on a schedule.',
  Subscriptions: "Recurring charges through an agreement, on the channel's schedule, each period charged once.",
  Transfers: "Payouts to a person's Alipay or WeChat account (企业付款), paid exactly once, within the app's limits.",
  'Red packets': 'WeChat and Alipay cash red packets (红包), followed until opened or refunded.',
  'API keys': 'The app\'s secret keys: create, roll with an overlap of up to 7 days, revoke. A secret is shown once.',
  Events: 'The event log behind the webhooks: kept, never pruned.',
  'Webhook endpoints': 'Where events are delivered, signed by Standard Webhooks.',
  'Test helpers': 'Test mode only: act as the customer and the channel.',
  Meta: 'This description of the API.',
};

const WEBHOOK_HEADERS = [
  { name: 'webhook-id', in: 'header', required: true, description: "The event's id, the same on every retry: deduplicate on it.", schema: { type: 'string' } },
  { name: 'webhook-timestamp', in: 'header', required: true, description: 'Unix seconds; refuse a message far from now.', schema: { type: 'string' } },
  {
    name: 'webhook-signature', in: 'header', required: true,
    description: 'Space-separated `v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>` (Standard Webhooks 1.0); two during a secret rotation.',
    schema: { type: 'string' },
  },
];

function webhookObject(type: (typeof knownEventTypes)[number]): Json {
  return {
    post: {
      operationId: `on${eventSchemaId(type)}`,
      summary: type,
      description: EVENT_DATA_SCHEMAS[type].summary,
      parameters: WEBHOOK_HEADERS,
      requestBody: { required: true, content: { 'application/json': { schema: schemaRef(eventSchemaId(type)) } } },
      responses: {
        '2XX': { description: 'Delivered. Anything else is retried for three days, with backoff; Retry-After is honoured.' },
        410: { description: 'Gone: the endpoint is disabled, and no more events are sent to it.' },
      },
    },
  };
}

/**
 * Every schema with an id (`.meta({id})`, zod's global registry) as a component, output side.
 * All of them: an object first reached inside another is still named, never inlined twice.
 */
function componentSchemas(): Json {
  const { schemas } = z.toJSONSchema(z.globalRegistry, { io: 'output', uri: (id) => `#/components/schemas/${id}` }) as { schemas: Json };
  if (schemas.__shared) throw new Error('a component refers to a schema without an id');
  return tidy(schemas, true) as Json;
}

export function buildOpenApiDocument(publicUrl: string): Json {
  const paths: Json = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
  const responses: Json = {};
  for (const [status, description] of Object.entries(ERROR_RESPONSES)) {
    responses[`E${status}`] = {
      description,
      ...(status === '429' ? { headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } } } : {}),
      content: { 'application/json': { schema: schemaRef('Error') } },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Checkstand API',
      version: '1',
      description: 'One API in front of Alipay and WeChat Pay. Amounts are integers in the minor unit; '
        + 'objects carry `id`, `object`, `livemode` and `created` (unix seconds); lists page with cursors. '
        + 'Every POST takes an Idempotency-Key: the first answer is replayed for 24 hours. '
        + 'Webhooks are signed by Standard Webhooks 1.0.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: publicUrl }],
    security: [{ bearerAuth: [] }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    paths,
    webhooks: Object.fromEntries(knownEventTypes.map((t) => [t, webhookObject(t)])),
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'The secret key: `sk_test_…` (test mode) or `sk_live_…`.' },
      },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key', in: 'header', required: false,
          description: 'Any unique string (a UUID): the first answer under it is stored for 24 hours and replayed to a retry; '
            + 'the same key with other parameters is a 400.',
          schema: { type: 'string', minLength: 1, maxLength: 255 },
        },
      },
      responses,
      schemas: componentSchemas(),
    },
  };
}

const built = new Map<string, string>();

/** The document as JSON text, built once per public URL. */
export function openApiJson(publicUrl: string): string {
  let text = built.get(publicUrl);
  if (!text) built.set(publicUrl, (text = JSON.stringify(buildOpenApiDocument(publicUrl))));
  return text;
}
