import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { insertEvent, type EventObject, type EventType } from '../events/repo.ts';
import { ApiError, invalid, notFound } from '../errors.ts';
import { newId, nowSeconds, seal } from '../crypto.ts';
import { bool, parseJson } from '../db.ts';
import { paginate, type ListPage } from '../http/pagination.ts';
import { generateWebhookSecret } from './sign.ts';
import { classifyHost, describeClass, isAddressAllowed, type AddressPolicy } from './address.ts';
import {
  disableEndpoint,
  enableEndpoint,
  endpointsOf,
  findEndpoint,
  insertEndpoint,
  rotateEndpointSecret as rotateSecretRow,
  softDeleteEndpoint,
  updateEndpointFields,
} from './repo.ts';

/** Webhook endpoints: create (the secret is shown once), read, list, update, rotate, test, soft-delete. No req/res here. */

/** Bus topic that wakes the delivery workers; publish on it after committing an event. */
export const WEBHOOKS_TOPIC = 'webhooks';

/** How long a rotated-out secret may keep signing: 24 h. */
export const MAX_ROTATION_OVERLAP_S = 86_400;

export interface WebhookEndpointObject {
  id: string;
  object: 'webhook_endpoint';
  livemode: boolean;
  url: string;
  enabled_events: string[];
  status: 'enabled' | 'disabled';
  /** Why the endpoint was disabled (410 Gone, three days of failures, the merchant); null when enabled. */
  disabled_reason: string | null;
  /** Since when (unix seconds) every delivery has failed; null while the endpoint accepts them. */
  failing_since: number | null;
  /** Until when (unix seconds) the secret replaced by the last rotation still signs; null when it does not. */
  previous_secret_expires_at: number | null;
  created: number;
}

// A Record over EventType makes tsc flag this list whenever a new event type is added.
const eventTypeSet: Record<EventType, true> = {
  'payment.succeeded': true,
  'payment.closed': true,
  'payment.attempt_failed': true,
  'refund.succeeded': true,
  'refund.failed': true,
  'webhook_endpoint.disabled': true,
  'agreement.active': true,
  'agreement.terminated': true,
  'subscription.created': true,
  'subscription.renewed': true,
  'subscription.payment_failed': true,
  'subscription.past_due': true,
  'subscription.canceled': true,
  'transfer.succeeded': true,
  'transfer.failed': true,
  'transfer.canceled': true,
  'transfer.awaiting_recipient': true,
  'red_packet.sent': true,
  'red_packet.received': true,
  'red_packet.refunded': true,
  'red_packet.failed': true,
  'reconciliation.discrepancy': true,
  'test.webhook': true,
};
export const knownEventTypes = Object.keys(eventTypeSet) as EventType[];

/** The webhook endpoint object as the API answers it; a test parses real answers with it. */
export const webhookEndpointObjectSchema = z
  .object({
    id: z.string().describe('we_…'),
    object: z.literal('webhook_endpoint'),
    livemode: z.boolean(),
    url: z.string(),
    enabled_events: z.array(z.string()).describe("event types, or ['*'] for all"),
    status: z.enum(['enabled', 'disabled']),
    disabled_reason: z.string().nullable(),
    failing_since: z.number().int().nullable(),
    previous_secret_expires_at: z.number().int().nullable(),
    created: z.number().int(),
  })
  .strict()
  .meta({ id: 'WebhookEndpoint' });

/** Create and rotate_secret answer the endpoint with its secret, the only time it is shown. */
export const webhookEndpointWithSecretSchema = webhookEndpointObjectSchema
  .extend({ secret: z.string().describe('whsec_…, shown once') })
  .meta({ id: 'WebhookEndpointWithSecret' });

export const deletedWebhookEndpointSchema = z
  .object({ id: z.string(), object: z.literal('webhook_endpoint'), deleted: z.literal(true) })
  .strict()
  .meta({ id: 'DeletedWebhookEndpoint' });

export const MAX_URL_LENGTH = 2048;

/** Input of POST /v1/webhook_endpoints; unknown keys are refused so a typo is not silently ignored. */
export const createEndpointSchema = z
  .object({
    url: z.string().trim().min(1).max(MAX_URL_LENGTH, `must be at most ${MAX_URL_LENGTH} characters`),
    enabled_events: z
      .array(z.string().refine((t) => t === '*' || (knownEventTypes as string[]).includes(t), { message: `must be '*' or one of ${knownEventTypes.join(', ')}` }))
      .min(1)
      .max(knownEventTypes.length + 1)
      .refine((a) => !a.includes('*') || a.length === 1, { message: "'*' already means every event; send it alone" })
      .default(['*']),
  })
  .strict();

export type CreateEndpointInput = z.input<typeof createEndpointSchema>;

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function endpointFromRow(row: any): WebhookEndpointObject {
  const previousUntil = numOrNull(row.previous_secret_expires_at);
  const disabled = row.status === 'disabled';
  return {
    id: row.id,
    object: 'webhook_endpoint',
    livemode: bool(row.livemode),
    url: row.url,
    enabled_events: parseJson<string[]>(row.enabled_events, ['*']),
    status: disabled ? 'disabled' : 'enabled',
    disabled_reason: disabled ? (row.disabled_reason ?? null) : null,
    failing_since: numOrNull(row.failing_since),
    previous_secret_expires_at: row.previous_secret_sealed && previousUntil !== null && previousUntil > nowSeconds() ? previousUntil : null,
    created: Number(row.created),
  };
}

/**
 * Creates an endpoint and returns its secret, the one time it is ever shown. The secret is
 * sealed under the master key with the endpoint id as associated data, so a sealed value
 * copied onto another row does not open.
 */
export async function createEndpoint(
  deps: Deps,
  auth: AuthContext,
  input: CreateEndpointInput,
): Promise<{ endpoint: WebhookEndpointObject; secret: string }> {
  const parsed = createEndpointSchema.parse(input);
  const url = checkWebhookUrl(parsed.url, policyOf(deps, auth));
  const enabledEvents = [...new Set(parsed.enabled_events)];
  const id = newId('we');
  const secret = generateWebhookSecret();
  const created = nowSeconds();
  await insertEndpoint(deps.db, {
    id,
    app_id: auth.appId,
    livemode: auth.livemode,
    url,
    enabled_events: enabledEvents,
    secret_sealed: seal(deps.config.masterKeyBytes, secret, id),
    created,
  });
  const endpoint: WebhookEndpointObject = {
    id,
    object: 'webhook_endpoint',
    livemode: auth.livemode,
    url,
    enabled_events: enabledEvents,
    status: 'enabled',
    disabled_reason: null,
    failing_since: null,
    previous_secret_expires_at: null,
    created,
  };
  return { endpoint, secret };
}

export async function getEndpoint(deps: Deps, auth: AuthContext, id: string): Promise<WebhookEndpointObject> {
  const row = await findEndpoint(deps.db, auth, id);
  if (!row) throw notFound('webhook_endpoint', id);
  return endpointFromRow(row);
}

export function listEndpoints(
  deps: Deps,
  auth: AuthContext,
  page: { limit: number; starting_after?: string; ending_before?: string },
): Promise<ListPage<WebhookEndpointObject>> {
  return paginate(() => endpointsOf(deps.db, auth), { ...page, url: '/v1/webhook_endpoints' }, endpointFromRow);
}

export async function deleteEndpoint(deps: Deps, auth: AuthContext, id: string): Promise<{ id: string; object: 'webhook_endpoint'; deleted: true }> {
  if (!(await softDeleteEndpoint(deps.db, auth, id, nowSeconds()))) throw notFound('webhook_endpoint', id);
  return { id, object: 'webhook_endpoint', deleted: true };
}

/** Input of POST /v1/webhook_endpoints/:id; status 'enabled' re-enables a disabled endpoint. */
export const updateEndpointSchema = z
  .object({
    url: createEndpointSchema.shape.url.optional(),
    enabled_events: createEndpointSchema.shape.enabled_events.unwrap().optional(),
    status: z.enum(['enabled', 'disabled']).optional(),
  })
  .strict();

/** Input of POST /v1/webhook_endpoints/:id/rotate_secret: how long the old secret keeps signing. */
export const rotateSecretSchema = z
  .object({ expires_in: z.number().int().min(0).max(MAX_ROTATION_OVERLAP_S).default(MAX_ROTATION_OVERLAP_S) })
  .strict();

/** Updates url, enabled_events and status; answers the endpoint as it now is. */
export async function updateEndpoint(deps: Deps, auth: AuthContext, id: string, input: z.input<typeof updateEndpointSchema>): Promise<WebhookEndpointObject> {
  const parsed = updateEndpointSchema.parse(input);
  const url = parsed.url === undefined ? undefined : checkWebhookUrl(parsed.url, policyOf(deps, auth));
  const enabledEvents = parsed.enabled_events && [...new Set(parsed.enabled_events)];
  const row = await deps.db.transaction(async (trx) => {
    const current = await findEndpoint(trx, auth, id);
    if (!current) throw notFound('webhook_endpoint', id);
    await updateEndpointFields(trx, id, { url, enabled_events: enabledEvents });
    if (parsed.status === 'enabled' && current.status !== 'enabled') await enableEndpoint(trx, id);
    if (parsed.status === 'disabled') await disableEndpoint(trx, id, 'Disabled through the API.');
    return findEndpoint(trx, auth, id);
  });
  return endpointFromRow(row);
}

/**
 * Rolls the endpoint's secret. The new one is returned, the only time it is shown; the old one
 * keeps signing beside it (two signatures in webhook-signature) for `expires_in` seconds so the
 * merchant can deploy the new secret without a gap. Rotating again within that window drops the
 * oldest secret: at most two ever sign.
 */
export async function rotateEndpointSecret(
  deps: Deps,
  auth: AuthContext,
  id: string,
  input: z.input<typeof rotateSecretSchema>,
): Promise<{ endpoint: WebhookEndpointObject; secret: string }> {
  const { expires_in } = rotateSecretSchema.parse(input);
  const key = deps.config.masterKeyBytes;
  const secret = generateWebhookSecret();
  for (let tries = 0; tries < 5; tries++) {
    const row = await findEndpoint(deps.db, auth, id);
    if (!row) throw notFound('webhook_endpoint', id);
    const keepOld = expires_in > 0;
    const won = await rotateSecretRow(deps.db, id, { currentSealed: row.secret_sealed }, {
      secretSealed: seal(key, secret, id),
      previousSealed: keepOld ? row.secret_sealed : null,
      previousExpiresAt: keepOld ? nowSeconds() + expires_in : null,
    });
    if (won) return { endpoint: endpointFromRow(await findEndpoint(deps.db, auth, id)), secret };
  }
  throw new ApiError(409, 'invalid_request_error', 'rotation_conflict', 'The secret is being rotated by another request; try again.', 'id');
}

/** Writes a `test.webhook` event delivered to this endpoint only, whatever it subscribed to. */
export async function sendTestEvent(deps: Deps, auth: AuthContext, id: string): Promise<EventObject> {
  const event = await deps.db.transaction(async (trx) => {
    const row = await findEndpoint(trx, auth, id);
    if (!row) throw notFound('webhook_endpoint', id);
    if (row.status !== 'enabled') throw invalid('endpoint_disabled', 'This endpoint is disabled; enable it before sending a test event.', 'id');
    return insertEvent(trx, { appId: auth.appId, livemode: auth.livemode, type: 'test.webhook', object: { ...endpointFromRow(row) } }, { onlyEndpointId: id });
  });
  wakeWorkers(deps, event.id);
  return event;
}

/** Tells the delivery workers (in every instance, on PostgreSQL) that something is due; polling is the fallback. */
export function wakeWorkers(deps: Deps, message: string): void {
  deps.bus.publish(WEBHOOKS_TOPIC, message).catch((err) => deps.logger.warn('could not publish on the bus', { err }));
}

/** The address rule for the caller's mode and the operator's setting. */
export function policyOf(deps: Deps, auth: { livemode: boolean }): AddressPolicy {
  return { livemode: auth.livemode, allowPrivate: deps.config.allowPrivateWebhooks };
}

// ---- URL checks ----------------------------------------------------------------------------

/**
 * Validates a webhook URL and returns it normalised; throws a 400 naming `url`. An IP literal
 * or a well-known local name is judged now by the same rule as delivery; any other name is
 * judged on each connection (client.ts), since what it resolves to can change.
 */
export function checkWebhookUrl(raw: string, policy: AddressPolicy): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalid('url_invalid', 'Invalid url: must be an absolute http(s) URL.', 'url');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid('url_invalid', 'Invalid url: only http and https URLs are supported.', 'url');
  // Credentials in the URL would be sent to whoever answers; the signature authenticates instead.
  if (u.username || u.password) throw invalid('url_invalid', 'Invalid url: credentials in the URL are not supported; authenticate with the webhook signature.', 'url');
  if (u.href.length > MAX_URL_LENGTH) throw invalid('url_invalid', `Invalid url: must be at most ${MAX_URL_LENGTH} characters.`, 'url');
  const cls = classifyHost(u.hostname);
  if (cls !== null && !isAddressAllowed(cls, policy)) {
    const mode = policy.livemode ? 'live-mode' : 'test-mode';
    throw invalid('url_not_allowed', `Invalid url: ${mode} webhooks cannot target ${describeClass(cls)} addresses (private, loopback, link-local and metadata targets are refused).`, 'url');
  }
  return u.href;
}
