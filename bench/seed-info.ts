import path from 'node:path';

/** What bench/seed.ts leaves for bench/queries.ts: the apps' keys, the console login, the counts. */
export interface SeedInfo {
  url: string;
  schema?: string;
  seeded_at: number;
  start: number;
  apps: Array<{ app_id: string; name: string; secret_key: string; live_secret_key: string; share: number }>;
  console: { email: string; password: string };
  counts: Record<string, number>;
}

/** data/bench-seed-<sqlite file name or schema>.json */
export function infoPath(databaseUrl: string, schema?: string): string {
  const name = databaseUrl.startsWith('sqlite:') ? path.basename(databaseUrl.slice('sqlite:'.length)) : schema ?? 'public';
  return path.join('data', `bench-seed-${name}.json`);
}
