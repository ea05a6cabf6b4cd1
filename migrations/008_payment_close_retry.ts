import type { Knex } from 'knex';

/**
 * When the worker may try again to close an expired payment whose channel could not be reached:
 * without it, the same failing payments came first in every pass and the rest never expired.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.bigInteger('close_retry_at_ms');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.dropColumn('close_retry_at_ms');
  });
}
