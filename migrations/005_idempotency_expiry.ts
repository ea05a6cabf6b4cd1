import type { Knex } from 'knex';

/** Stored idempotent responses expire after 24 h; the worker deletes them by age. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('idempotency_keys', (t) => {
    t.index(['created_ms']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('idempotency_keys', (t) => {
    t.dropIndex(['created_ms']);
  });
}
