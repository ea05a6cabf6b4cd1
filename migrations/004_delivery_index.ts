import type { Knex } from 'knex';

/** An endpoint's deliveries are listed newest first (API and console): index that order. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('webhook_deliveries', (t) => {
    t.index(['endpoint_id', 'created', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('webhook_deliveries', (t) => {
    t.dropIndex(['endpoint_id', 'created', 'id']);
  });
}
