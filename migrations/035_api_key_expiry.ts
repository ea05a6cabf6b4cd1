import type { Knex } from 'knex';

/**
 * api_keys.expires_at (unix seconds): a rolled key keeps working until then, beside its
 * successor, so a merchant can deploy the new key before the old one stops (up to 7 days);
 * null for a key that does not expire. rolled_to names the key that replaced it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    t.bigInteger('expires_at');
    t.string('rolled_to', 40);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    t.dropColumn('expires_at');
    t.dropColumn('rolled_to');
  });
}
