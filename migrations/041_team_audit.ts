import type { Knex } from 'knex';

/**
 * Console teams and the audit log (issue 16).
 * - console_memberships: which apps a console user may open, and with which role. Every existing
 *   user becomes the owner of the app they had (console_users.app_id stays as the app they
 *   joined first; memberships are what counts).
 * - console_invitations: an invitation by email with a role; only the SHA-256 of its one-time
 *   token is stored, so a copy of the database cannot be used to join.
 * - audit_log: every change made in the console, and API changes of keys and webhook endpoints:
 *   who (console user or API key), what, on which object, from which IP, when. Summaries never
 *   hold secrets.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('console_memberships', (t) => {
    t.string('user_id', 40).notNullable().references('console_users.id').onDelete('CASCADE');
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    /** owner | admin | developer | viewer (dashboard/roles.ts). */
    t.string('role', 16).notNullable();
    t.bigInteger('created_ms').notNullable();
    t.primary(['user_id', 'app_id']);
    t.index(['app_id', 'role']);
  });
  const now = Date.now();
  const users = await knex('console_users').select('id', 'app_id');
  for (let i = 0; i < users.length; i += 200) {
    await knex('console_memberships').insert(users.slice(i, i + 200).map((u) => ({ user_id: u.id, app_id: u.app_id, role: 'owner', created_ms: now })));
  }

  await knex.schema.createTable('console_invitations', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.string('email', 254).notNullable();
    t.string('role', 16).notNullable();
    t.string('token_hash', 64).notNullable().unique();
    t.string('invited_by', 40).notNullable();
    t.bigInteger('created_ms').notNullable();
    t.bigInteger('expires_ms').notNullable();
    /** Set once, when the invitation is used or revoked: a token works one time. */
    t.bigInteger('used_ms');
    t.string('used_by', 40);
    t.boolean('revoked').notNullable().defaultTo(false);
    t.index(['app_id', 'created_ms']);
  });

  await knex.schema.createTable('audit_log', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable();
    /** The mode the change was made in; null for changes that belong to no mode (the team). */
    t.boolean('livemode');
    /** console_user | api_key | cli */
    t.string('actor_type', 16).notNullable();
    t.string('actor_id', 64);
    t.string('actor_email', 254);
    t.string('action', 64).notNullable();
    t.string('object_type', 32);
    t.string('object_id', 64);
    /** JSON object of what changed; secrets are never written here. */
    t.text('summary').notNullable();
    t.string('ip', 64);
    t.bigInteger('created_ms').notNullable();
    t.index(['app_id', 'created_ms']);
    t.index(['app_id', 'actor_id', 'created_ms']);
    t.index(['app_id', 'action', 'created_ms']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_log');
  await knex.schema.dropTableIfExists('console_invitations');
  await knex.schema.dropTableIfExists('console_memberships');
}
