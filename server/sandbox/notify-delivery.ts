/**
 * How every simulator delivers its notifies, as the channels do: at once, twice, later or never
 * (the notify mode), and re-sent on the channel's own retry schedule until it is acknowledged.
 * Timers never keep the process (or a test run) alive: the simulators' retries are best effort.
 */
import type { Logger } from '../log.ts';
import type { NotifyMode } from './types.ts';

export interface NotifySchedule {
  /**
   * Sends per the mode: normal (await the answer), duplicate (twice, same notify id), delay:N
   * (after N seconds, not awaited) or drop (never). `post` sends once and says whether the
   * channel's acknowledgement came back. Never throws.
   */
  send(post: () => Promise<boolean>, mode: NotifyMode, logger: Logger, fields: Record<string, unknown>): Promise<void>;
  /** Cancels every scheduled send (delays and retries), e.g. on shutdown. */
  cancel(): void;
  /** How many sends wait on a timer. */
  count(): number;
}

export function notifySchedule(channel: string, retryDelaysMs: readonly number[]): NotifySchedule {
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  };
  const deliver = async (post: () => Promise<boolean>, attempt = 0): Promise<void> => {
    const ok = await post();
    const delay = retryDelaysMs[attempt];
    if (!ok && delay !== undefined) later(delay, () => void deliver(post, attempt + 1));
  };
  return {
    async send(post, mode, logger, fields) {
      if (mode === 'drop') {
        logger.info(`${channel} sandbox notify dropped on request`, fields);
      } else if (mode === 'normal') {
        await deliver(post);
      } else if (mode === 'duplicate') {
        await deliver(post);
        await post();
      } else {
        later(Math.max(0, Number(mode.slice('delay:'.length))) * 1000, () => void deliver(post));
      }
    },
    cancel() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
    count: () => timers.size,
  };
}

/** Parses a notify mode as the payer pages and act() send it; unknown values fall back to normal. */
export function notifyModeOf(mode: unknown, delaySeconds?: unknown): NotifyMode {
  if (mode === 'drop' || mode === 'duplicate' || mode === 'normal') return mode;
  const fromMode = typeof mode === 'string' ? /^delay:(\d{1,5})$/.exec(mode)?.[1] : undefined;
  const seconds = fromMode ?? (mode === 'delay' && /^\d{1,5}$/.test(String(delaySeconds ?? '')) ? String(delaySeconds) : undefined);
  return seconds !== undefined ? `delay:${Number(seconds)}` : 'normal';
}
