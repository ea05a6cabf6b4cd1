import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import { unseal } from '../../server/crypto.ts';
import { setChannelConfig } from '../../server/apps/channel-configs.ts';
import type { Provider } from '../../server/channels/types.ts';

/**
 * A slow network path to a channel simulator: an HTTP proxy that holds every request for
 * `delayMs` (or until release() after hold()) before passing it on, and passes it on even after
 * the caller gave up or died: a channel that received a request acts on it whether or not we
 * still listen.
 */
export async function startSlowProxy(target: string) {
  let delayMs = 0;
  let seen = 0;
  let failStatus = 0;
  const bodies: string[] = [];
  let held: Promise<void> | undefined;
  let release = () => undefined as void;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen++;
      const body = Buffer.concat(chunks);
      bodies.push(`${req.method} ${decodeURIComponent(req.url ?? '')} ${decodeURIComponent(body.toString('utf8').replace(/\+/g, ' '))}`);
      if (failStatus) return void res.writeHead(failStatus, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
      const headers = { ...req.headers };
      delete headers.host;
      delete headers.connection;
      const gate = held;
      setTimeout(async () => {
        await gate;
        try {
          const up = await fetch(target + req.url, {
            method: req.method,
            headers: headers as Record<string, string>,
            body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
            redirect: 'manual',
          });
          const answer = Buffer.from(await up.arrayBuffer());
          const out: Record<string, string> = {};
          up.headers.forEach((v, k) => {
            if (k !== 'content-encoding' && k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') out[k] = v;
          });
          res.writeHead(up.status, out).end(answer);
        } catch {
          res.destroy();
        }
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setDelay(ms: number) {
      delayMs = ms;
    },
    /** Requests from now on wait until release(). */
    hold() {
      held = new Promise<void>((r) => (release = r));
    },
    release() {
      held = undefined;
      release();
    },
    /** Answers every request with this HTTP status instead of passing it on (0: pass on again). */
    failWith(status: number) {
      failStatus = status;
    },
    /** Every request that reached the proxy: method, URL and body, decoded. */
    bodies,
    /** How many requests reached the proxy so far. */
    get requests() {
      return seen;
    },
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

const URL_FIELDS: Partial<Record<Provider, string[]>> = { alipay: ['gateway'], wechatpay: ['base_url'] };

/**
 * Re-points an app's stored channel config (test mode, provisioned at the simulator) at `proxyUrl`:
 * the same keys, only the origin of the channel's endpoints changes.
 */
export async function routeChannelThrough(
  deps: { db: Knex; config: { masterKeyBytes: Buffer } },
  appId: string,
  provider: Provider,
  proxyUrl: string,
): Promise<void> {
  const aad = `channel:${appId}:${provider}:test`;
  const row = await deps.db('channel_configs').where({ app_id: appId, provider, livemode: false }).first('config_sealed');
  if (!row) throw new Error(`no ${provider} config for ${appId} yet: use the channel once first`);
  const raw = JSON.parse(unseal(deps.config.masterKeyBytes, row.config_sealed, aad)) as Record<string, unknown>;
  for (const field of URL_FIELDS[provider] ?? []) {
    if (typeof raw[field] !== 'string') continue;
    const u = new URL(raw[field] as string);
    const p = new URL(proxyUrl);
    u.protocol = p.protocol;
    u.host = p.host;
    raw[field] = u.toString();
  }
  await setChannelConfig(deps as never, appId, provider, false, raw);
}
