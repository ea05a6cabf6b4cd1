import type { Knex } from 'knex';

/**
 * What a payment's client does next, kept on the payment row so that retrieving, listing and the
 * events built from the row need no read of its attempts (DESIGN §2.1):
 * - next_action: JSON `{action, expires_at}` of the attempt placed through the API (create with
 *   channel, or confirm), the adapter's action as it returned it; null when nothing is left to do.
 * - next_action_attempt_id: the attempt it belongs to; a later failure of that attempt clears it.
 * - last_attempt_error: JSON `{channel, code, message}` of the last attempt that failed, or null.
 * They change in the statements that change the attempts: placing, failing, succeeding, closing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.text('next_action');
    t.string('next_action_attempt_id', 64);
    t.text('last_attempt_error');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.dropColumn('next_action');
    t.dropColumn('next_action_attempt_id');
    t.dropColumn('last_attempt_error');
  });
}
