import type { Knex } from 'knex';

/**
 * The channel onboarding checklist (issue 16, 支付渠道申请): which steps of a channel's application
 * the merchant has ticked, per app, mode and channel (dashboard/onboarding-routes.ts). A row is a
 * ticked item; unticking deletes it. Item ids are apps/onboarding.ts's.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('channel_onboarding_items', (t) => {
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.boolean('livemode').notNullable();
    t.string('provider', 16).notNullable();
    t.string('item', 40).notNullable();
    /** The console user who ticked it. */
    t.string('checked_by', 40).notNullable();
    t.bigInteger('checked_ms').notNullable();
    t.primary(['app_id', 'livemode', 'provider', 'item']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('channel_onboarding_items');
}
