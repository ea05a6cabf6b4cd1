import type { Knex } from 'knex';

/**
 * Attempts are looked up by payment and status (closing a winner's siblings, finding the paid
 * attempt to refund). With only (payment_id) beside (status, next_query_at_ms), SQLite's planner,
 * which has no statistics, took the status index and walked every pending attempt of every payment.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.index(['payment_id', 'status']);
  });
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.dropIndex(['payment_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.index(['payment_id']);
  });
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.dropIndex(['payment_id', 'status']);
  });
}
