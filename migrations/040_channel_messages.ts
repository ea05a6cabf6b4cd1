import type { Knex } from 'knex';

/**
 * What each channel said and was told about a payment (issue 16, "a payment's whole story"):
 * inbound notifies and browser returns with their verification result, and the outbound calls
 * whose answers matter (create, query, close, refund) with a summary of the request and the
 * normalized result. Bodies are scrubbed of secrets and bounded before they are written
 * (channel-messages/scrub.ts); rows are purged after the retention period by the payment worker.
 * No foreign keys: a refused notify may name an app or order that does not exist.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('channel_messages', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable();
    /** Unknown for a notify no config of the app verified. */
    t.boolean('livemode');
    t.string('provider', 16).notNullable();
    /** notify | return | create | query | close | refund */
    t.string('kind', 16).notNullable();
    /** in: the channel (or the browser) came to us; out: we called the channel. */
    t.string('direction', 3).notNullable();
    t.string('payment_id', 40);
    t.string('attempt_id', 40);
    t.string('refund_id', 40);
    t.string('order_no', 64);
    /** Inbound: the status we answered with. */
    t.integer('http_status');
    /** verified | refused | error | unchecked */
    t.string('verification', 16).notNullable();
    t.string('reason', 500);
    /** Scrubbed JSON, at most BODY_LIMIT bytes (cut with a marker beyond). */
    t.text('body');
    /** Size of the scrubbed body before the cut. */
    t.integer('body_bytes').notNullable().defaultTo(0);
    t.integer('duration_ms');
    t.bigInteger('created_ms').notNullable();
    t.index(['payment_id', 'created_ms']);
    t.index(['created_ms']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('channel_messages');
}
