/**
 * Runs `fn` with the Alipay simulator's clock for the app at `atMs` (sandbox/clock.ts), so that
 * the deductions a test clock sends are judged against the subscription's time (the deduction
 * window, one success per period), not the wall clock. The simulator's clock is per merchant:
 * it is put back as it was afterwards.
 */
import type { Deps } from '../deps.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import type { AlipayCredentials } from '../channels/alipay/index.ts';
import { sandboxClockOffset, setSandboxClock } from '../sandbox/clock.ts';

export async function atSimulatorTime<T>(deps: Deps, appId: string, atMs: number, fn: () => Promise<T>): Promise<T> {
  const merchantId = ((await getCredentials(deps, appId, 'alipay', false)) as AlipayCredentials).appId;
  const before = await sandboxClockOffset(deps.db, 'alipay', merchantId);
  await setSandboxClock(deps.db, 'alipay', merchantId, Math.round(atMs - Date.now()));
  try {
    return await fn();
  } finally {
    await setSandboxClock(deps.db, 'alipay', merchantId, before);
  }
}
