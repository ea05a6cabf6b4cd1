import type { Knex } from 'knex';

/**
 * Console sessions and the indexes the console's search needs. Only the SHA-256 of a session
 * id is stored, so a copy of the database does not let anyone into the console.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('console_sessions', (t) => {
    t.string('id_hash', 64).primary();
    t.string('user_id', 40).notNullable().references('console_users.id').onDelete('CASCADE');
    t.string('app_id', 40).notNullable();
    /** The per-session synchronizer token every console form carries. */
    t.string('csrf_token', 64).notNullable();
    /** The console's test/live switch. */
    t.boolean('livemode').notNullable().defaultTo(false);
    t.bigInteger('created_ms').notNullable();
    t.bigInteger('last_seen_ms').notNullable();
    t.index(['user_id']);
    t.index(['last_seen_ms']);
  });
  // /console/payments?q= finds a payment by the channel's trade number, which lives on its attempts.
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.index(['channel_trade_no']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.dropIndex(['channel_trade_no']);
  });
  await knex.schema.dropTableIfExists('console_sessions');
}
