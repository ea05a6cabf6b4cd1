import { EventEmitter } from 'node:events';
import type { StatusBus } from './deps.ts';

/** In-process bus: enough for one gateway process (SQLite). PostgreSQL LISTEN/NOTIFY crosses instances. */
export function createLocalBus(): StatusBus & { close(): Promise<void> } {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    async publish(topic, message) {
      emitter.emit(topic, message);
    },
    subscribe(topic, fn) {
      emitter.on(topic, fn);
      return () => emitter.off(topic, fn);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}
