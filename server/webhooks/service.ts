import net from 'node:net';
import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import type { EventType } from '../events/repo.ts';
import { invalid, notFound } from '../errors.ts';
import { newId, nowSeconds, seal } from '../crypto.ts';
import { bool, parseJson } from '../db.ts';
import { paginate, type ListPage } from '../http/pagination.ts';
import { generateWebhookSecret } from './sign.ts';
import { endpointsOf, findEndpoint, insertEndpoint, softDeleteEndpoint } from './repo.ts';

/** Webhook endpoints: create (the secret is shown once), read, list, soft-delete. No req/res here. */

export interface WebhookEndpointObject {
  id: string;
  object: 'webhook_endpoint';
  livemode: boolean;
  url: string;
  enabled_events: string[];
  status: 'enabled' | 'disabled';
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
  'test.webhook': true,
};
export const knownEventTypes = Object.keys(eventTypeSet) as EventType[];

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

export function endpointFromRow(row: any): WebhookEndpointObject {
  return {
    id: row.id,
    object: 'webhook_endpoint',
    livemode: bool(row.livemode),
    url: row.url,
    enabled_events: parseJson<string[]>(row.enabled_events, ['*']),
    status: row.status === 'disabled' ? 'disabled' : 'enabled',
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
  const url = checkWebhookUrl(parsed.url, { livemode: auth.livemode, allowPrivate: deps.config.allowPrivateWebhooks });
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
  const endpoint: WebhookEndpointObject = { id, object: 'webhook_endpoint', livemode: auth.livemode, url, enabled_events: enabledEvents, status: 'enabled', created };
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

// ---- URL checks ----------------------------------------------------------------------------

// Literal addresses a live webhook must not reach (SSRF, DESIGN §4). Names that resolve to such
// addresses are caught later, at delivery time, once DNS-time checking lands.
const blockedAddresses = new net.BlockList();
for (const [net4, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, includes the 169.254.169.254 cloud metadata service
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments (incl. 192.0.0.192 Oracle metadata)
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 3], // multicast, reserved and broadcast
] as const) blockedAddresses.addSubnet(net4, prefix, 'ipv4');
for (const [net6, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128],
  ['fc00::', 7], // unique local, includes fd00:ec2::254 (AWS metadata)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) blockedAddresses.addSubnet(net6, prefix, 'ipv6');

const blockedNames = new Set(['localhost', 'metadata.google.internal', 'metadata']);

/** True when a URL host (as the WHATWG parser normalised it) is a private, loopback, link-local or metadata target. */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (blockedNames.has(host) || host.endsWith('.localhost')) return true;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = net.isIP(bare);
  // BlockList also matches IPv4-mapped IPv6 (::ffff:127.0.0.1) against the IPv4 subnets.
  if (family === 4) return blockedAddresses.check(bare, 'ipv4');
  if (family === 6) return blockedAddresses.check(bare, 'ipv6');
  return false;
}

/** Validates a webhook URL and returns it normalised; throws a 400 naming `url`. */
export function checkWebhookUrl(raw: string, opts: { livemode: boolean; allowPrivate: boolean }): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalid('url_invalid', 'Invalid url: must be an absolute http(s) URL.', 'url');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid('url_invalid', 'Invalid url: only http and https URLs are supported.', 'url');
  // fetch refuses URLs with credentials, so such an endpoint could never be delivered to.
  if (u.username || u.password) throw invalid('url_invalid', 'Invalid url: credentials in the URL are not supported; authenticate with the webhook signature.', 'url');
  if (u.href.length > MAX_URL_LENGTH) throw invalid('url_invalid', `Invalid url: must be at most ${MAX_URL_LENGTH} characters.`, 'url');
  if (opts.livemode && !opts.allowPrivate && isPrivateHost(u.hostname)) {
    throw invalid('url_not_allowed', 'Invalid url: live-mode webhooks cannot target private, loopback or link-local addresses.', 'url');
  }
  return u.href;
}
