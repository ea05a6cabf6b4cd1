/**
 * Mutual TLS for the simulated WeChat Pay API v2 (red packets), on the gateway's own port.
 *
 * WeChat's v2 money-out endpoints take a client certificate in the TLS handshake, so the
 * simulator must speak TLS. A second listener on a port of its own would not survive what the
 * gateway does: channel configs are stored at provisioning with the simulator's URL, the
 * gateway restarts, and tests start servers on port 0. So the gateway's port speaks both: the
 * first byte a client sends tells a TLS ClientHello (0x16, a handshake record) from HTTP (a
 * method's letter), and a TLS connection is handed to a tls server that serves only the v2
 * routes. The v2 base URL is therefore `https://<the gateway's host:port>/sandbox/wechatpay/v2`,
 * derived from PUBLIC_URL; it stays right across restarts as long as PUBLIC_URL does. (A
 * PUBLIC_URL whose TLS ends at a proxy cannot carry the client certificate: the simulator's v2
 * needs the gateway reached directly.)
 *
 * The simulator's certificate authority lives in sandbox_wechat_v2_keys (sealed), created on
 * first use: it issues each sandbox merchant's apiclient certificate and the TLS server
 * certificate (for localhost, 127.0.0.1, ::1, PUBLIC_URL's host, and any SNI name on demand).
 */
import crypto, { type KeyObject } from 'node:crypto';
import type http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { promisify } from 'node:util';
import express from 'express';
import type { Knex } from 'knex';
import { seal, unseal } from '../../crypto.ts';
import type { SandboxDeps } from '../types.ts';
import { issueCertificate, randomSerial, type DistinguishedName } from '../unionpay/x509.ts';

const generateKeyPair = promisify(crypto.generateKeyPair);

const CA_ROW = 'ca';
const CA_NAME: DistinguishedName = [['C', 'CN'], ['O', 'Checkstand sandbox'], ['OU', 'WeChat Pay simulator'], ['CN', 'Checkstand sandbox WeChat Pay CA']];
const YEAR_S = 365 * 24 * 3600;
/** A client that opens a connection and says nothing is dropped after this long. */
const FIRST_BYTE_TIMEOUT_MS = 30_000;
const TLS_HANDSHAKE_RECORD = 0x16;

export interface V2Authority {
  key: KeyObject;
  certificate: string;
}

const aad = (id: string) => `sandbox_wechat_v2_keys:${id}`;

/** A sealed row of sandbox_wechat_v2_keys. */
export async function readV2Row<T>(db: Knex, masterKey: Buffer, id: string): Promise<T | undefined> {
  const row = await db('sandbox_wechat_v2_keys').where({ id }).first('data_sealed');
  return row ? (JSON.parse(unseal(masterKey, row.data_sealed, aad(id))) as T) : undefined;
}

/** Inserts a sealed row unless one exists; true when this call wrote it. */
export async function insertV2Row(db: Knex, masterKey: Buffer, id: string, data: unknown): Promise<boolean> {
  const rows = await db('sandbox_wechat_v2_keys')
    .insert({ id, data_sealed: seal(masterKey, JSON.stringify(data), aad(id)), created: Math.floor(Date.now() / 1000) })
    .onConflict(['id'])
    .ignore()
    .returning('id');
  return rows.length > 0;
}

const authorities = new WeakMap<Knex, Promise<V2Authority>>();

/** The simulator's CA: read from the database, or made (once, whoever inserts first wins) on first use. */
export function v2Authority(deps: Pick<SandboxDeps, 'db' | 'masterKey'>): Promise<V2Authority> {
  let hit = authorities.get(deps.db);
  if (!hit) {
    hit = loadOrCreateAuthority(deps).catch((err) => {
      authorities.delete(deps.db);
      throw err;
    });
    authorities.set(deps.db, hit);
  }
  return hit;
}

async function loadOrCreateAuthority(deps: Pick<SandboxDeps, 'db' | 'masterKey'>): Promise<V2Authority> {
  const open = (s: { key: string; certificate: string }): V2Authority => ({ key: crypto.createPrivateKey(s.key), certificate: s.certificate });
  const stored = await readV2Row<{ key: string; certificate: string }>(deps.db, deps.masterKey, CA_ROW);
  if (stored) return open(stored);
  const pair = await generateKeyPair('rsa', { modulusLength: 2048 });
  const now = Math.floor(Date.now() / 1000);
  const certificate = issueCertificate({
    serial: randomSerial(8), subject: CA_NAME, issuer: CA_NAME, notBefore: now - 3600, notAfter: now + 20 * YEAR_S,
    publicKey: pair.publicKey, issuerKey: pair.privateKey, ca: true,
  });
  await insertV2Row(deps.db, deps.masterKey, CA_ROW, { key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certificate });
  // Another process may have inserted first: its CA is the one.
  return open((await readV2Row<{ key: string; certificate: string }>(deps.db, deps.masterKey, CA_ROW))!);
}

/**
 * The merchant API certificate (apiclient_cert.pem) for a merchant's key, as WeChat Pay issues it:
 * its serial is the certificate serial the merchant names in v3 requests, its CN the mchid.
 */
export function issueMerchantCertificate(ca: V2Authority, opts: { mchid: string; serialNo: string; publicKey: KeyObject }): string {
  const now = Math.floor(Date.now() / 1000);
  return issueCertificate({
    serial: BigInt(`0x${opts.serialNo}`), subject: [['C', 'CN'], ['O', '微信商户系统'], ['OU', 'Checkstand sandbox merchant'], ['CN', opts.mchid]],
    issuer: CA_NAME, notBefore: now - 3600, notAfter: now + 5 * YEAR_S, publicKey: opts.publicKey, issuerKey: ca.key, ca: false,
  });
}

/** The v2 base URL for a gateway at publicUrl: the same host and port, over TLS. */
export function v2BaseUrl(publicUrl: string): string {
  const u = new URL(publicUrl);
  u.protocol = 'https:';
  return `${u.origin}/sandbox/wechatpay/v2`;
}

// --- the listener --------------------------------------------------------------------------------

const accepting = new WeakSet<net.Server>();

/**
 * Makes `server` (the gateway's HTTP server) also accept TLS connections, served by `v2Routes`
 * (mounted at /sandbox/wechatpay/v2) with the client certificate requested. `deps` is read when
 * the first TLS connection arrives (startGateway knows PUBLIC_URL only once it listens); while it
 * is undefined, TLS connections are closed. Calling it twice for one server does nothing.
 */
export function acceptSandboxTls(server: http.Server, deps: () => SandboxDeps | undefined, v2Routes: (deps: SandboxDeps) => express.Router): void {
  if (accepting.has(server)) return;
  accepting.add(server);
  let tlsServer: Promise<https.Server> | undefined;
  const pending = new Set<net.Socket>();
  const tlsSockets = new Set<Duplex>();

  const httpListeners = server.listeners('connection') as ((socket: net.Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    pending.add(socket);
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once('close', () => pending.delete(socket));
    socket.once('data', (first: Buffer) => {
      pending.delete(socket);
      socket.setTimeout(0);
      socket.pause();
      if (first[0] !== TLS_HANDSHAKE_RECORD) {
        // HTTP as before: the bytes go back where the HTTP parser reads them.
        socket.unshift(first);
        for (const listener of httpListeners) listener.call(server, socket);
        socket.resume();
        return;
      }
      const d = deps();
      if (!d) {
        socket.destroy();
        return;
      }
      tlsServer ??= createTlsServer(d, v2Routes).catch((err) => {
        tlsServer = undefined;
        throw err;
      });
      tlsServer.then((s) => {
        // tls wraps a net.Socket's handle directly and would miss the byte already read: a plain
        // stream in between carries it (tls then reads through that stream).
        const carrier = carrierOf(socket, first);
        tlsSockets.add(carrier);
        carrier.once('close', () => tlsSockets.delete(carrier));
        s.emit('connection', carrier);
      }, (err) => {
        d.logger.error('wechatpay sandbox: the v2 TLS listener could not start', { err });
        socket.destroy();
      });
    });
  });

  // Shutdown ends these too: a socket that never spoke, and the TLS ones, are not the HTTP server's to close.
  const closeAll = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    closeAll();
    for (const s of pending) s.destroy();
    for (const s of tlsSockets) s.destroy();
  };
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    for (const s of pending) s.destroy();
  };
}

/** A duplex over the raw socket that starts with the bytes already read. */
function carrierOf(socket: net.Socket, first: Buffer): Duplex {
  const carrier = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, encoding, cb) {
      socket.write(chunk, encoding, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  carrier.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!carrier.push(chunk)) socket.pause();
  });
  socket.on('end', () => carrier.push(null));
  socket.on('error', (err) => carrier.destroy(err));
  socket.on('close', () => carrier.destroy());
  // What request handlers read as the peer address.
  Object.defineProperties(carrier, { remoteAddress: { get: () => socket.remoteAddress }, remotePort: { get: () => socket.remotePort } });
  return carrier;
}

async function createTlsServer(deps: SandboxDeps, v2Routes: (deps: SandboxDeps) => express.Router): Promise<https.Server> {
  const ca = await v2Authority(deps);
  const serverKeys = await generateKeyPair('rsa', { modulusLength: 2048 });
  const key = serverKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const host = new URL(deps.publicUrl).hostname.replace(/^\[|\]$/g, '');
  const names = { dns: ['localhost'], ip: ['127.0.0.1', '::1'] };
  if (net.isIP(host)) names.ip.push(host);
  else names.dns.push(host);
  const serverCert = (altNames: { dns: string[]; ip: string[] }) => {
    const now = Math.floor(Date.now() / 1000);
    return issueCertificate({
      serial: randomSerial(8), subject: [['C', 'CN'], ['O', 'Checkstand sandbox'], ['CN', altNames.dns[0] ?? altNames.ip[0] ?? 'localhost']],
      issuer: CA_NAME, notBefore: now - 3600, notAfter: now + YEAR_S, publicKey: serverKeys.publicKey, issuerKey: ca.key, ca: false, altNames,
    });
  };
  const common = { key, ca: ca.certificate, requestCert: true, rejectUnauthorized: false } as const;
  const byName = new Map<string, tls.SecureContext>();
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    // One request per connection: each call presents its certificate afresh, and no idle TLS socket outlives a shutdown.
    res.set('Connection', 'close');
    next();
  });
  app.use('/sandbox/wechatpay/v2', v2Routes(deps));
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('Only the WeChat Pay API v2 simulator is served over TLS here (/sandbox/wechatpay/v2)\n');
  });
  return https.createServer({
    ...common,
    cert: serverCert(names),
    // A name the default certificate lacks (another host name of this machine) gets one of its own.
    SNICallback: (servername, cb) => {
      if (names.dns.includes(servername) || !/^[A-Za-z0-9.-]{1,253}$/.test(servername)) return cb(null, undefined);
      let ctx = byName.get(servername);
      if (!ctx) {
        if (byName.size > 100) byName.clear();
        ctx = tls.createSecureContext({ key, cert: serverCert({ dns: [servername], ip: [] }), ca: ca.certificate });
        byName.set(servername, ctx);
      }
      cb(null, ctx);
    },
  }, app);
}
