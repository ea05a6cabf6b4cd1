/**
 * The simulators' clock (test mode): the "now" a simulator judges time-bound channel rules by
 * (Alipay's 周期扣款 deduction window), per merchant at the simulator. It is the real clock plus
 * an offset stored in sandbox_clocks, so every gateway process on one database sees the same
 * time, and each request reads it afresh: a test clock that advances sets a new offset and the
 * next request at the simulator is judged by it. To stand at an absolute instant T (unix ms),
 * set the offset T - Date.now(); time then keeps running from there.
 */
import type { Knex } from 'knex';
import type { Provider } from '../channels/types.ts';

/** Sets the offset (ms, may be negative; 0 = the real clock) of one merchant's clock at a simulator. */
export async function setSandboxClock(db: Knex, provider: Provider, merchantId: string, offsetMs: number): Promise<void> {
  if (!Number.isSafeInteger(offsetMs)) throw new RangeError(`sandbox clock offset must be an integer of milliseconds, got ${offsetMs}`);
  await db('sandbox_clocks')
    .insert({ provider, merchant_id: merchantId, offset_ms: offsetMs, updated_ms: Date.now() })
    .onConflict(['provider', 'merchant_id'])
    .merge(['offset_ms', 'updated_ms']);
}

/** The offset (ms) of one merchant's clock at a simulator; 0 when none was set. */
export async function sandboxClockOffset(db: Knex, provider: Provider, merchantId: string): Promise<number> {
  const row = await db('sandbox_clocks').where({ provider, merchant_id: merchantId }).first('offset_ms');
  return row ? Number(row.offset_ms) : 0;
}

/** The simulator's "now" for one merchant, unix milliseconds. */
export async function sandboxNowMs(db: Knex, provider: Provider, merchantId: string): Promise<number> {
  return Date.now() + (await sandboxClockOffset(db, provider, merchantId));
}
