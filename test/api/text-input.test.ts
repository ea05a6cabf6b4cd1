import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';

/** Inputs that used to reach the database (PostgreSQL refuses U+0000 in text) or the router as a 500. */
let g: TestGateway;
let seq = 0;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const count = async (table: string) => Number((await g.deps.db(table).count<{ n: number }[]>({ n: '*' }))[0].n);

describe('text with a NUL character', () => {
  it('is a 400 naming the parameter, anywhere in a body, and creates nothing', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ subject: 'tea\u0000' }, 'subject'],
      [{ description: '\u0000' }, 'description'],
      [{ metadata: { note: 'a\u0000b' } }, 'metadata[note]'],
    ];
    const before = await count('payments');
    for (const [extra, param] of cases) {
      const res = await g.api('POST', '/v1/payments', { amount: 100, subject: 'Tea', out_trade_no: `nul_${++seq}`, ...extra });
      expect(res.status, param).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_invalid', param });
      expect(res.body.error.message).toContain('NUL');
    }
    expect(await count('payments')).toBe(before);
  });

  it('is a 400 in a query too', async () => {
    const res = await g.api('GET', '/v1/payments?out_trade_no=%00');
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe('out_trade_no');
  });

  it('a literal backslash-u0000 is ordinary text', async () => {
    const res = await g.api('POST', '/v1/payments', { amount: 100, subject: 'C:\\u0000', out_trade_no: `nul_${++seq}` });
    expect(res.status).toBe(200);
    expect(res.body.subject).toBe('C:\\u0000');
  });
});

describe('a malformed percent-escape in a path', () => {
  it('is a 400 error object, not a 500', async () => {
    const res = await g.api('GET', '/v1/payments/%E0%A4%A');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_invalid', param: 'id' });
  });
});
