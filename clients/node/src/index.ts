import { Webhook } from 'standardwebhooks';
import type { components, operations } from './schema.js';

/**
 * The Checkstand API client for Node (18+; any runtime with fetch). Types come from the
 * gateway's OpenAPI document (./schema.ts, generated). Every POST carries an Idempotency-Key
 * (the caller's, or a fresh UUID), and a retry of a failed request re-sends that same key, so a
 * retried create or refund never runs twice.
 */

type Schemas = components['schemas'];
export type Payment = Schemas['Payment'];
export type NextAction = Schemas['NextAction'];
export type Refund = Schemas['Refund'];
export type Event = Schemas['Event'];
export type EventType = Event['type'];
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookEndpointWithSecret = Schemas['WebhookEndpointWithSecret'];
export type DeletedWebhookEndpoint = Schemas['DeletedWebhookEndpoint'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type ApiErrorObject = Schemas['Error']['error'];
export interface List<T> {
  object: 'list';
  url: string;
  data: T[];
  has_more: boolean;
}

type JsonBody<Op extends keyof operations> = operations[Op] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type QueryOf<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>;

export type CreatePaymentParams = JsonBody<'createPayment'>;
export type ConfirmPaymentParams = JsonBody<'confirmPayment'>;
export type ListPaymentsParams = QueryOf<'listPayments'>;
export type CreateRefundParams = JsonBody<'createRefund'>;
export type ListEventsParams = QueryOf<'listEvents'>;
export type CreateWebhookEndpointParams = JsonBody<'createWebhookEndpoint'>;
export type UpdateWebhookEndpointParams = JsonBody<'updateWebhookEndpoint'>;
export type SimulatePaymentParams = JsonBody<'simulatePayment'>;

/** Per-request options. */
export interface RequestOptions {
  /** For a POST: the key the gateway deduplicates on. Without one, the client makes a UUID (kept across its retries). */
  idempotencyKey?: string;
  /** Overrides the client's maxRetries for this call. */
  maxRetries?: number;
}

export interface ClientOptions {
  /** sk_test_… or sk_live_… */
  apiKey: string;
  /** The gateway's URL, e.g. https://pay.example.com */
  baseUrl: string;
  /** Retries of a network error, a 409 (the same key still running), a 429 or a 5xx: 2 by default. */
  maxRetries?: number;
  /** Per-attempt timeout, 30 s by default. */
  timeoutMs?: number;
  /** The first backoff delay; it doubles each retry (with jitter), up to maxDelayMs. 500 ms by default. */
  initialDelayMs?: number;
  /** The longest wait between tries, Retry-After included: 20 s by default. */
  maxDelayMs?: number;
  /** A fetch of your own (a proxy agent, a test double). */
  fetch?: typeof fetch;
  /** Told before each retry: why, and how long the client waits (for logs and metrics). */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  method: string;
  path: string;
  /** 1 for the first retry. */
  retry: number;
  delayMs: number;
  /** The answer's status, or undefined after a network error. */
  status?: number;
  idempotencyKey?: string;
}

/** The API answered with an error: `error` is its error object ({type, code, message, param?, request_id}). */
export class CheckstandError extends Error {
  readonly status: number;
  readonly error: ApiErrorObject;
  readonly type: ApiErrorObject['type'];
  readonly code: string;
  readonly param?: string;
  readonly requestId: string;
  constructor(status: number, error: ApiErrorObject) {
    super(error.message);
    this.name = 'CheckstandError';
    this.status = status;
    this.error = error;
    this.type = error.type;
    this.code = error.code;
    this.param = error.param;
    this.requestId = error.request_id;
  }
}

/** No answer from the gateway (network error, timeout) after every retry. */
export class CheckstandConnectionError extends Error {
  constructor(message: string, readonly cause?: unknown) {
    super(message);
    this.name = 'CheckstandConnectionError';
  }
}

/** A webhook whose signature, timestamp or body does not verify. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** The headers of a webhook delivery: a fetch Headers, or Node's IncomingHttpHeaders. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

const RETRIED_STATUSES = new Set([409, 429, 500, 502, 503, 504]);

/** Seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.append(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

const segment = (id: string) => encodeURIComponent(id);

export class Checkstand {
  readonly payments;
  readonly refunds;
  readonly events;
  readonly webhookEndpoints;
  readonly webhooks;
  /** Test mode only: act as the customer and the channel. */
  readonly testHelpers;
  private readonly opts: Required<Omit<ClientOptions, 'fetch' | 'onRetry'>> & Pick<ClientOptions, 'onRetry'> & { fetch: typeof fetch };

  constructor(options: ClientOptions) {
    if (!options.apiKey) throw new Error('Checkstand: apiKey is required');
    if (!options.baseUrl) throw new Error('Checkstand: baseUrl is required');
    this.opts = {
      maxRetries: 2,
      timeoutMs: 30_000,
      initialDelayMs: 500,
      maxDelayMs: 20_000,
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      fetch: options.fetch ?? globalThis.fetch,
    };
    const req = this.request.bind(this);
    this.payments = {
      create: (params: CreatePaymentParams, o?: RequestOptions) => req<Payment>('POST', '/v1/payments', { body: params, ...o }),
      retrieve: (id: string) => req<Payment>('GET', `/v1/payments/${segment(id)}`),
      list: (params: ListPaymentsParams = {}) => req<List<Payment>>('GET', '/v1/payments', { query: params }),
      /** Place (or switch to) a channel order now; the answer carries next_action. */
      confirm: (id: string, params: ConfirmPaymentParams, o?: RequestOptions) =>
        req<Payment>('POST', `/v1/payments/${segment(id)}/confirm`, { body: params, ...o }),
      close: (id: string, o?: RequestOptions) => req<Payment>('POST', `/v1/payments/${segment(id)}/close`, o),
    };
    this.refunds = {
      /** Refunds a succeeded payment; `amount` defaults to what is left. */
      create: (paymentId: string, params: CreateRefundParams = {}, o?: RequestOptions) =>
        req<Refund>('POST', `/v1/payments/${segment(paymentId)}/refunds`, { body: params, ...o }),
      retrieve: (id: string) => req<Refund>('GET', `/v1/refunds/${segment(id)}`),
    };
    this.events = {
      list: (params: ListEventsParams = {}) => req<List<Event>>('GET', '/v1/events', { query: params }),
      retrieve: (id: string) => req<Event>('GET', `/v1/events/${segment(id)}`),
      deliveries: (id: string, params: QueryOf<'listEventDeliveries'> = {}) =>
        req<List<WebhookDelivery>>('GET', `/v1/events/${segment(id)}/deliveries`, { query: params }),
      resend: (id: string, params: JsonBody<'resendEvent'> = {}, o?: RequestOptions) =>
        req<List<WebhookDelivery>>('POST', `/v1/events/${segment(id)}/resend`, { body: params, ...o }),
    };
    this.webhookEndpoints = {
      /** The answer's `secret` (whsec_…) is shown this once: store it. */
      create: (params: CreateWebhookEndpointParams, o?: RequestOptions) =>
        req<WebhookEndpointWithSecret>('POST', '/v1/webhook_endpoints', { body: params, ...o }),
      retrieve: (id: string) => req<WebhookEndpoint>('GET', `/v1/webhook_endpoints/${segment(id)}`),
      list: (params: QueryOf<'listWebhookEndpoints'> = {}) => req<List<WebhookEndpoint>>('GET', '/v1/webhook_endpoints', { query: params }),
      update: (id: string, params: UpdateWebhookEndpointParams, o?: RequestOptions) =>
        req<WebhookEndpoint>('POST', `/v1/webhook_endpoints/${segment(id)}`, { body: params, ...o }),
      del: (id: string) => req<DeletedWebhookEndpoint>('DELETE', `/v1/webhook_endpoints/${segment(id)}`),
      rotateSecret: (id: string, params: JsonBody<'rotateWebhookEndpointSecret'> = {}, o?: RequestOptions) =>
        req<WebhookEndpointWithSecret>('POST', `/v1/webhook_endpoints/${segment(id)}/rotate_secret`, { body: params, ...o }),
      sendTest: (id: string, o?: RequestOptions) => req<Event>('POST', `/v1/webhook_endpoints/${segment(id)}/test`, o),
      deliveries: (id: string, params: QueryOf<'listWebhookEndpointDeliveries'> = {}) =>
        req<List<WebhookDelivery>>('GET', `/v1/webhook_endpoints/${segment(id)}/deliveries`, { query: params }),
    };
    this.testHelpers = {
      simulate: (paymentId: string, params: SimulatePaymentParams = {}, o?: RequestOptions) =>
        req<Payment>('POST', `/v1/test_helpers/payments/${segment(paymentId)}/simulate`, { body: params, ...o }),
    };
    this.webhooks = { verify: verifyWebhook };
  }

  /** Every item of a list, page after page (`starting_after` the last id). */
  async *autoPaginate<T extends { id: string }>(list: (params: { starting_after?: string }) => Promise<List<T>>): AsyncGenerator<T> {
    let after: string | undefined;
    for (;;) {
      const page = await list(after ? { starting_after: after } : {});
      yield* page.data;
      if (!page.has_more || page.data.length === 0) return;
      after = page.data[page.data.length - 1].id;
    }
  }

  private async request<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    o: RequestOptions & { body?: unknown; query?: Record<string, unknown> } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.apiKey}`, accept: 'application/json' };
    let body: string | undefined;
    if (method === 'POST') {
      // One key for the call, whatever number of tries it takes: the gateway answers a retry
      // of a request it already ran with the stored answer, never by running it again.
      headers['idempotency-key'] = o.idempotencyKey ?? crypto.randomUUID();
      if (o.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(o.body);
      }
    }
    const url = `${this.opts.baseUrl}${path}${queryString(o.query)}`;
    const maxRetries = o.maxRetries ?? this.opts.maxRetries;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.opts.fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.opts.timeoutMs) });
      } catch (err) {
        if (attempt >= maxRetries) throw new CheckstandConnectionError(`Could not reach the gateway (${method} ${path}): ${(err as Error).message}`, err);
        await this.pause({ method, path, retry: attempt + 1, delayMs: this.backoff(attempt), idempotencyKey: headers['idempotency-key'] });
        continue;
      }
      const text = await res.text();
      if (res.ok) return JSON.parse(text) as T;
      if (RETRIED_STATUSES.has(res.status) && attempt < maxRetries) {
        const delayMs = this.backoff(attempt, retryAfterMs(res.headers.get('retry-after')));
        await this.pause({ method, path, retry: attempt + 1, delayMs, status: res.status, idempotencyKey: headers['idempotency-key'] });
        continue;
      }
      throw new CheckstandError(res.status, errorObjectOf(res.status, text));
    }
  }

  private pause(info: RetryInfo): Promise<unknown> {
    this.opts.onRetry?.(info);
    return sleep(info.delayMs);
  }

  /** Exponential, jittered over its upper half; the gateway's Retry-After when it sent one. */
  private backoff(attempt: number, retryAfter?: number): number {
    if (retryAfter !== undefined) return Math.min(retryAfter, this.opts.maxDelayMs);
    const ceiling = Math.min(this.opts.initialDelayMs * 2 ** attempt, this.opts.maxDelayMs);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

/** The API's error object, or one made up for an answer that has none (a proxy's HTML page). */
function errorObjectOf(status: number, text: string): ApiErrorObject {
  try {
    const parsed = JSON.parse(text) as { error?: ApiErrorObject };
    if (parsed?.error && typeof parsed.error.message === 'string') return parsed.error;
  } catch {
    // not JSON
  }
  return { type: 'api_error', code: `http_${status}`, message: `The gateway answered HTTP ${status} without an error object.`, request_id: '' };
}

function headerOf(headers: WebhookHeaders, name: string): string {
  const v = headers instanceof Headers ? headers.get(name) : (headers[name] ?? headers[name.toLowerCase()]);
  return (Array.isArray(v) ? v[0] : v) ?? '';
}

/**
 * Verifies a webhook delivery by Standard Webhooks (signature over id.timestamp.body, a
 * timestamp within five minutes) and returns its event, typed by `type`. `body` must be the raw
 * body as received: parsed and re-serialized JSON no longer matches the signature.
 */
export function verifyWebhook(body: string | Uint8Array, headers: WebhookHeaders, secret: string): Event {
  const raw = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const h = {
    'webhook-id': headerOf(headers, 'webhook-id'),
    'webhook-timestamp': headerOf(headers, 'webhook-timestamp'),
    'webhook-signature': headerOf(headers, 'webhook-signature'),
  };
  let event: unknown;
  try {
    event = new Webhook(secret).verify(raw, h);
  } catch (err) {
    throw new WebhookVerificationError(`The webhook does not verify: ${(err as Error).message}`);
  }
  const e = event as Partial<Event> | null;
  if (!e || e.object !== 'event' || typeof e.type !== 'string' || e.id !== h['webhook-id']) {
    throw new WebhookVerificationError('The webhook verifies, but its body is not the event its webhook-id names.');
  }
  return e as Event;
}
