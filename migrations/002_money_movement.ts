import type { Knex } from 'knex';

/** Refunds the gateway starts by itself (a second successful attempt) do not count against the payment. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('refunds', (t) => {
    t.boolean('automatic').notNullable().defaultTo(false);
    t.integer('submit_count').notNullable().defaultTo(0);
    t.index(['status', 'next_query_at_ms']);
  });
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.bigInteger('closed_at_channel_at');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('refunds', (t) => {
    t.dropIndex(['status', 'next_query_at_ms']);
    t.dropColumn('automatic');
    t.dropColumn('submit_count');
  });
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.dropColumn('closed_at_channel_at');
  });
}
