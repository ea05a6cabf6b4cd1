import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCHEMA_FILE, generateSchemaTypes } from '../../clients/node/scripts/generate.ts';

describe('clients/node types', () => {
  it('are the ones generated from the current OpenAPI document (else: npm run client:types)', async () => {
    const committed = fs.readFileSync(SCHEMA_FILE, 'utf8');
    const fresh = await generateSchemaTypes();
    // A plain equality, so the failure shows the lines that differ.
    expect(committed.split('\n')).toEqual(fresh.split('\n'));
  });
});
