// Measurements more than one benchmark takes.
import crypto from 'node:crypto';
import http from 'node:http';

/** How many RSA-2048 SHA-256 signatures node:crypto makes per second on one thread (the reference for channel calls). */
export function rsaSignaturesPerSecond(forSeconds: number): number {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const data = Buffer.from('app_id=2021000000000000&biz_content={"out_trade_no":"bench"}&method=alipay.trade.pay');
  for (let i = 0; i < 50; i++) crypto.sign('sha256', data, privateKey);
  let n = 0;
  const started = performance.now();
  while (performance.now() - started < forSeconds * 1000) {
    crypto.sign('sha256', data, privateKey);
    n++;
  }
  return n / ((performance.now() - started) / 1000);
}

/**
 * Downloads a CSV with the session's cookies on its own connection (no keep-alive: a pooled
 * socket the server has just timed out resets) and counts its lines and bytes as they stream.
 */
export async function downloadCsv(url: string, cookies: Map<string, string>): Promise<{ lines: number; bytes: number; contentLength: string | undefined }> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(url, { agent: false, headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } }, resolve).on('error', reject);
  });
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  let lines = 0;
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    for (const b of chunk) if (b === 10) lines++;
  }
  // A streamed answer has none: it is chunked.
  return { lines, bytes, contentLength: res.headers['content-length'] };
}
