import crypto from 'node:crypto';

/**
 * Standard Webhooks 1.0 signing (https://www.standardwebhooks.com/): what a merchant verifies
 * with the `standardwebhooks` or `svix` libraries. Secrets are never logged by this module.
 */

const SECRET_PREFIX = 'whsec_';
const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes (the spec asks for 24 to 64). */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + crypto.randomBytes(32).toString('base64');
}

/** The HMAC key of a `whsec_…` secret: the base64-decoded part after the prefix. */
export function secretKeyBytes(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : '';
  // Buffer.from silently skips bad characters, so check the alphabet first: a mangled secret
  // must fail loudly rather than sign with a different key.
  if (!base64Pattern.test(encoded)) throw new Error('webhook secret must be whsec_ followed by base64');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < 24) throw new Error('webhook secret must hold at least 24 bytes');
  return key;
}

/** `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` for one secret. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = crypto.createHmac('sha256', secretKeyBytes(secret)).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64');
  return `v1,${mac}`;
}

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The three Standard Webhooks headers. Several secrets give several space-separated
 * signatures: during a secret rotation the receiver may still hold the previous one.
 */
export function webhookHeaders(input: { id: string; timestamp: number; body: string; secrets: string[] }): WebhookHeaders {
  if (input.secrets.length === 0) throw new Error('at least one webhook secret is needed');
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(input.timestamp),
    'webhook-signature': input.secrets.map((s) => signWebhook(s, input.id, input.timestamp, input.body)).join(' '),
  };
}
