// Which code the `checkstand` command runs: the compiled server in dist/ when it is there and no
// source is newer than it, else the TypeScript sources (through tsx). Plain JavaScript, as it
// runs before anything that could load TypeScript.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What tsconfig.build.json compiles; a newer .ts file in any of them means dist/ is stale. */
const SOURCE_DIRS = ['server', 'migrations', 'examples'];
const COMPILED_MAIN = 'dist/server/cli/main.js';

/**
 * @param {string} root the package root (the directory holding bin/)
 * @returns {{ compiled: true, url: string } | { compiled: false, reason: string }}
 */
export function chooseEntry(root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')) {
  const compiled = path.join(root, COMPILED_MAIN);
  let builtAt;
  try {
    builtAt = fs.statSync(compiled).mtimeMs;
  } catch {
    return { compiled: false, reason: 'no build in dist/' };
  }
  for (const dir of SOURCE_DIRS) {
    const newer = newerSource(path.join(root, dir), builtAt);
    if (newer) return { compiled: false, reason: `${path.relative(root, newer)} is newer than the build in dist/` };
  }
  return { compiled: true, url: pathToFileURL(compiled).href };
}

/** The first .ts file under dir modified after `than` (ms), if any. A few ms for the whole tree. */
function newerSource(dir, than) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return undefined; // an installed package may ship dist/ without the sources
  }
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const file = path.join(e.parentPath ?? e.path, e.name);
    if (fs.statSync(file).mtimeMs > than) return file;
  }
  return undefined;
}
