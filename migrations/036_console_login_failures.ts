import type { Knex } from 'knex';

/**
 * Failed console sign-ins per email, in the database so that every gateway process counts the
 * same attempts (the per-IP limits are per process). The email is kept only as an HMAC under the
 * master key: attempts on addresses that have no account are counted alike, so a lockout says
 * nothing about which accounts exist, and no address an attacker typed is stored.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('console_login_failures', (t) => {
    t.string('email_hmac', 64).primary();
    /** Attempts counted in the window, a sign-in being checked included (see dashboard/lockout.ts). */
    t.integer('failures').notNullable();
    t.bigInteger('window_start_ms').notNullable();
    /** 0 while not locked. */
    t.bigInteger('locked_until_ms').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('console_login_failures');
}
