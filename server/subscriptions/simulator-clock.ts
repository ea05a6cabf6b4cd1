/**
 * Runs `fn` with the simulator's clock for the app's merchant at `atMs` (sandbox/clock.ts), so
 * that the deductions a test clock sends are judged against the subscription's time (Alipay's
 * deduction window and one success per period; WeChat's notice hours, waiting day and deduction
 * days), not the wall clock. The simulator's clock is per merchant: it is put back as it was
 * afterwards.
 */
import type { Deps } from '../deps.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import type { AlipayCredentials } from '../channels/alipay/index.ts';
import type { WechatpayCredentials } from '../channels/wechatpay/index.ts';
import { sandboxClockOffset, setSandboxClock } from '../sandbox/clock.ts';

export async function atSimulatorTime<T>(deps: Deps, appId: string, atMs: number, fn: () => Promise<T>, provider: 'alipay' | 'wechatpay' = 'alipay'): Promise<T> {
  const cred = await getCredentials(deps, appId, provider, false);
  const merchantId = provider === 'wechatpay' ? (cred as WechatpayCredentials).mchid : (cred as AlipayCredentials).appId;
  const before = await sandboxClockOffset(deps.db, provider, merchantId);
  await setSandboxClock(deps.db, provider, merchantId, Math.round(atMs - Date.now()));
  try {
    return await fn();
  } finally {
    await setSandboxClock(deps.db, provider, merchantId, before);
  }
}
