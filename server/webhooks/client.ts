import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { classifyAddress, describeClass, isAddressAllowed, type AddressPolicy } from './address.ts';

/**
 * The HTTP client that delivers webhooks. It is node:http(s) rather than global fetch because
 * fetch resolves names itself: here every connection goes through a lookup that refuses
 * addresses the endpoint's mode may not reach, so the check applies to the address actually
 * connected to and DNS rebinding cannot get around it (DESIGN §4).
 */

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  policy: AddressPolicy;
  timeoutMs: number;
}

export interface WebhookResponse {
  statusCode: number;
  retryAfter: string | null;
  /** The first `EXCERPT_BYTES` of the body, for the console; the rest is never read. */
  excerpt: string;
}

export interface WebhookClient {
  post(req: WebhookRequest): Promise<WebhookResponse>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

export const EXCERPT_BYTES = 1024;

/** The endpoint's host resolved only to addresses its mode may not reach. */
export class AddressRefusedError extends Error {
  override name = 'AddressRefusedError';
  readonly code = 'EADDRREFUSED';
}

export class DeliveryTimeoutError extends Error {
  override name = 'TimeoutError';
}

type Lookup = typeof dns.lookup;

function refusal(host: string, address: string, policy: AddressPolicy): AddressRefusedError {
  const cls = describeClass(classifyAddress(address) ?? 'reserved');
  const who = policy.livemode ? 'live-mode' : 'test-mode';
  const name = host === address ? address : `${host} (${address})`;
  return new AddressRefusedError(
    `Refused to connect to ${name}: ${who} webhooks may not reach ${cls} addresses` +
      (cls === 'loopback' || cls === 'private' || cls === 'unique-local' || cls === 'cgnat' ? ' unless the operator sets CHECKSTAND_ALLOW_PRIVATE_WEBHOOKS.' : '.'),
  );
}

function allowed(address: string, policy: AddressPolicy): boolean {
  const cls = classifyAddress(address);
  return cls !== null && isAddressAllowed(cls, policy);
}

/**
 * A `lookup` for net.connect: resolves every address of the name and hands on only the allowed
 * ones, so the socket can only ever connect to an address that passed the check.
 */
export function guardedLookup(policy: AddressPolicy, resolve: Lookup = dns.lookup): net.LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as dns.LookupAddress[];
      const ok = list.filter((a) => allowed(a.address, policy));
      if (ok.length === 0) return callback(list.length ? refusal(hostname, list[0].address, policy) : Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      if (options.all) return callback(null, ok);
      callback(null, ok[0].address, ok[0].family);
    });
  };
}

/**
 * One keep-alive agent per scheme and policy: a socket opened under the test-mode rule (loopback
 * allowed) must never be reused for a live-mode delivery to the same host and port.
 */
export function createWebhookClient(opts: { resolve?: Lookup; freeSocketTimeoutMs?: number } = {}): WebhookClient {
  const agents = new Map<string, http.Agent>();
  function agentFor(protocol: string, policy: AddressPolicy): http.Agent {
    const key = `${protocol}|${policy.livemode}|${policy.allowPrivate}`;
    let agent = agents.get(key);
    if (!agent) {
      // Idle sockets close after 4 s, before Node's default 5 s server keep-alive: reusing a
      // socket the server is closing fails the request.
      const agentOpts = { keepAlive: true, timeout: opts.freeSocketTimeoutMs ?? 4000, lookup: guardedLookup(policy, opts.resolve) };
      agent = protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
      agents.set(key, agent);
    }
    return agent;
  }

  async function post(req: WebhookRequest): Promise<WebhookResponse> {
    const url = new URL(req.url);
    // An IP literal never goes through lookup, so it is checked here, before connecting.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (classifyAddress(host) !== null && !allowed(host, req.policy)) throw refusal(host, host, req.policy);
    const agent = agentFor(url.protocol, req.policy);
    try {
      return await send(url, req, agent);
    } catch (err) {
      // A kept-alive socket the server closed at the same moment: the request never reached it,
      // so one immediate retry on a fresh connection is what Node's documentation advises.
      if ((err as { reusedSocket?: boolean }).reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') return send(url, req, agent);
      throw err;
    }
  }

  return {
    post,
    close() {
      for (const a of agents.values()) a.destroy();
      agents.clear();
    },
  };
}

function send(url: URL, input: WebhookRequest, agent: http.Agent): Promise<WebhookResponse> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, value?: WebhookResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value!);
    };
    const req = request(url, {
      method: 'POST',
      agent,
      headers: { ...input.headers, 'content-length': String(Buffer.byteLength(input.body)) },
    });
    // One deadline for connect, headers and the excerpt together. Once the status line is in,
    // a body that trickles past the deadline does not undo the answer: what arrived is kept.
    let answered: (() => void) | undefined;
    const timer = setTimeout(() => {
      const err = new DeliveryTimeoutError(`Timed out after ${input.timeoutMs / 1000} s.`);
      if (answered) answered();
      else finish(err);
      req.destroy(err);
    }, input.timeoutMs);
    req.on('error', (err) => finish(Object.assign(err, { reusedSocket: req.reusedSocket })));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        const excerpt = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8').replace(/\u0000/g, ''); // PostgreSQL text cannot hold NUL
        const retryAfter = res.headers['retry-after'];
        finish(null, { statusCode: res.statusCode ?? 0, retryAfter: typeof retryAfter === 'string' ? retryAfter : null, excerpt });
      };
      answered = done;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= EXCERPT_BYTES) {
          done();
          res.destroy(); // the rest is not read; the socket is not reused
        }
      });
      res.on('end', done);
      // A body that breaks off still leaves the status and what arrived.
      res.on('error', done);
      res.on('aborted', done);
    });
    req.end(input.body);
  });
}
