#!/usr/bin/env node
// Entry for the `checkstand` command: TypeScript sources run through tsx, no build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../server/cli/main.ts');
await main(process.argv.slice(2));
