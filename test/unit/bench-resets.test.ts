import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { postPhase } from '../../bench/webhooks.ts';

// The webhook bench once died of an unhandled ECONNRESET: a notify whose connection the gateway
// reset while later notifies were still being scheduled. A reset is a failed request to count
// (a channel would retry it), never the end of the bench.

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
});

describe('webhook bench', () => {
  it('counts notifies whose connection was reset and goes on posting', async () => {
    const receivedAt = new Map<string, number>();
    let n = 0;
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // Every third notify: the connection is reset instead of answered.
        if (n++ % 3 === 0) return req.socket.resetAndDestroy();
        receivedAt.set(Buffer.concat(chunks).toString(), performance.now());
        res.end('success');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
    const notifies = Array.from({ length: 12 }, (_, i) => ({ payment: `pay_${i}`, body: `pay_${i}` }));

    const r = await postPhase(url, notifies, 200, receivedAt);
    expect(r.accepted + r.failed).toBe(12);
    expect(r.failed).toBeGreaterThanOrEqual(4);
    expect(r.failures).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect(r.missing).toBe(0);
  });
});
