import type { Knex } from 'knex';

/**
 * The WeChat Pay simulator's cash red packets (API v2): the simulator's certificate authority
 * (it issues the merchants' apiclient certificates and its own TLS server certificate), each
 * merchant's v2 key and certificate, the packets keyed by mch_billno as WeChat keys them, and
 * a ledger of debits, so a test can tell how many times a packet was paid.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sandbox_wechat_v2_keys', (t) => {
    // 'ca' for the authority; a mchid for a merchant's v2 key and certificate.
    t.string('id', 64).primary();
    t.text('data_sealed').notNullable();
    t.bigInteger('created').notNullable();
  });
  await knex.schema.createTable('sandbox_wechat_redpacks', (t) => {
    t.string('mch_id', 32).notNullable();
    t.string('mch_billno', 32).notNullable();
    t.string('detail_id', 40).notNullable();
    t.string('re_openid', 64).notNullable();
    // SENT (the view adds the SENDING moment), RECEIVED, RFUND_ING, REFUND, FAILED.
    t.string('status', 16).notNullable();
    t.bigInteger('amount').notNullable();
    // Digest of the business fields: a resend with the same ones gets the first answer.
    t.string('terms', 64).notNullable();
    t.text('data').notNullable();
    // Beijing calendar day of the send, for the 10-packets-per-user-per-day limit.
    t.string('send_day', 8).notNullable();
    t.bigInteger('created_ms').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['mch_id', 'mch_billno']);
    t.index(['mch_id', 're_openid', 'send_day']);
  });
  await knex.schema.createTable('sandbox_wechat_redpack_debits', (t) => {
    t.increments('id');
    t.string('mch_id', 32).notNullable();
    t.string('mch_billno', 32).notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('created_ms').notNullable();
    t.index(['mch_id', 'mch_billno']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['sandbox_wechat_redpack_debits', 'sandbox_wechat_redpacks', 'sandbox_wechat_v2_keys']) await knex.schema.dropTableIfExists(t);
}
