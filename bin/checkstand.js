#!/usr/bin/env node
// Entry for the `checkstand` command: the compiled server in dist/ (`npm run build`, which
// `npm start` runs first). Without a build, or when a source is newer than it, the TypeScript
// sources run through tsx instead: a fresh checkout works, and an edit never runs as its old build.
import { chooseEntry } from './entry.js';

const entry = chooseEntry();
let main;
if (entry.compiled) {
  ({ main } = await import(entry.url));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../server/cli/main.ts'));
}
await main(process.argv.slice(2), entry.compiled ? {} : { fromSources: entry.reason });
