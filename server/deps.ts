import type { Knex } from 'knex';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

/** What every service and route factory receives; built once by createApp's caller. */
export interface Deps {
  db: Knex;
  config: Config;
  logger: Logger;
  /** Wakes listeners (cashier status, workers) when a payment changes; crosses instances on PostgreSQL. */
  bus: StatusBus;
}

export interface StatusBus {
  publish(topic: string, message: string): Promise<void>;
  subscribe(topic: string, fn: (message: string) => void): () => void;
  /** Every message whose topic starts with `prefix` (e.g. 'payment:'), with its topic. */
  subscribePrefix(prefix: string, fn: (topic: string, message: string) => void): () => void;
}

/** The authenticated caller of /v1, set by the api-key middleware on res.locals.auth. */
export interface AuthContext {
  appId: string;
  livemode: boolean;
}
