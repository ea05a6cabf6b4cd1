/** Which code the `checkstand` command runs (see entry.js). */
export type Entry = { compiled: true; url: string } | { compiled: false; reason: string };
export function chooseEntry(root?: string): Entry;
