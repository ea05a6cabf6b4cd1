// npm run bench, webhook phase: notify accepted → webhook received at a local receiver, at a
// steady rate of genuine signed channel notifies. The gateway runs in a child process; the
// receiver and the notify driver share this process, so both ends use one clock.
import http from 'node:http';
import readline from 'node:readline';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { Webhook } from 'standardwebhooks';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

export async function webhookLatency(opts: { rate?: number; seconds?: number } = {}): Promise<void> {
  const rate = opts.rate ?? Number(process.env.BENCH_WEBHOOK_RATE ?? 200);
  const seconds = opts.seconds ?? Number(process.env.BENCH_WEBHOOK_SECONDS ?? 10);
  const count = rate * seconds;

  const receivedAt = new Map<string, number>();
  const bodies: Array<{ body: string; headers: http.IncomingHttpHeaders }> = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const body = Buffer.concat(chunks).toString('utf8');
      const paymentId = JSON.parse(body).data.object.id as string;
      if (!receivedAt.has(paymentId)) receivedAt.set(paymentId, at);
      bodies.push({ body, headers: req.headers });
      res.writeHead(204).end();
    });
  });
  receiver.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

  // BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the gateway.
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'bench/webhook-server.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_WEBHOOK_URL: receiverUrl, BENCH_WEBHOOK_COUNT: String(count) },
  });
  try {
    const prepStarted = Date.now();
    const line = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout!, crlfDelay: Infinity }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`webhook bench server exited with ${code}`)));
    });
    const { notifyUrl, secret, notifies } = JSON.parse(line) as { notifyUrl: string; secret: string; notifies: Array<{ payment: string; body: string }> };
    console.log(`webhooks: ${notifies.length} payments prepared in ${((Date.now() - prepStarted) / 1000).toFixed(1)} s (paid at the simulator, notify held back)`);

    // Post the notifies at a fixed rate, each on its own schedule, whatever the answers take.
    const sentAt = new Map<string, number>();
    const acceptedAt = new Map<string, number>();
    let refused = 0;
    const interval = 1000 / rate;
    const start = performance.now();
    const posts: Promise<void>[] = [];
    for (let i = 0; i < notifies.length; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const n = notifies[i];
      sentAt.set(n.payment, performance.now());
      posts.push((async () => {
        const res = await fetch(notifyUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: n.body });
        const answer = await res.text();
        if (answer === 'success') acceptedAt.set(n.payment, performance.now());
        else refused++;
      })());
    }
    await Promise.all(posts);
    const achieved = notifies.length / ((performance.now() - start) / 1000);
    const deadline = Date.now() + 30_000;
    while (receivedAt.size < acceptedAt.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    const fromAccepted: number[] = [];
    const fromSent: number[] = [];
    let early = 0;
    for (const [payment, accepted] of acceptedAt) {
      const got = receivedAt.get(payment);
      if (got === undefined) continue;
      // The gateway commits, wakes the worker, then answers the channel: the webhook can arrive
      // before the answer does. Such a delivery counts as 0 ms after acceptance.
      if (got < accepted) early++;
      fromAccepted.push(Math.max(0, got - accepted));
      fromSent.push(got - sentAt.get(payment)!);
    }
    const wh = new Webhook(secret);
    const unverified = bodies.filter(({ body, headers }) => {
      try {
        wh.verify(body, headers as Record<string, string>);
        return false;
      } catch {
        return true;
      }
    }).length;
    const missing = acceptedAt.size - fromAccepted.length;
    const f = (xs: number[], p: number) => (xs.length ? pct(xs, p).toFixed(1) : '-');
    console.log(`notifies posted at ${achieved.toFixed(0)}/s (target ${rate}/s) for ${seconds} s: ${acceptedAt.size} accepted, ${refused} refused`);
    console.log(`notify accepted → webhook received: p50 ${f(fromAccepted, 50)} ms  p99 ${f(fromAccepted, 99)} ms  max ${fromAccepted.length ? Math.max(...fromAccepted).toFixed(1) : '-'} ms  (${early} arrived before the notify's answer)`);
    console.log(`notify sent → webhook received:     p50 ${f(fromSent, 50)} ms  p99 ${f(fromSent, 99)} ms`);
    const ack = [...acceptedAt].map(([payment, at]) => at - sentAt.get(payment)!);
    console.log(`notify sent → accepted (the channel's view): p50 ${f(ack, 50)} ms  p99 ${f(ack, 99)} ms`);
    const p99 = fromAccepted.length ? pct(fromAccepted, 99) : Infinity;
    console.log(`webhook p99 ${p99 <= 100 ? 'meets' : 'MISSES'} the goal of ≤ 100 ms; ${missing} accepted payments without a webhook, ${unverified} deliveries failing verification`);
  } finally {
    child.kill('SIGTERM');
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  }
}

// Run alone: tsx bench/webhooks.ts
if (import.meta.url === `file://${process.argv[1]}`) await webhookLatency();
