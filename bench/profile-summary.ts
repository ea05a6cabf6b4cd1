// Summarises a V8 .cpuprofile (node --cpu-prof, or the webhook bench's BENCH_PROFILE): the
// functions with the most self time, and the time spent inside each package or server folder
// (inclusive: a knex call that ends in better-sqlite3 counts for both).
//   tsx bench/profile-summary.ts FILE [--top N]
import fs from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** 'knex', 'better-sqlite3', 'server/payments', 'node:internal', … for a frame's URL. */
function areaOf(url: string): string {
  if (!url) return '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const own = /\/(server|bench|migrations)\/([^/]+)/.exec(url);
  if (own) return own[2].endsWith('.ts') ? own[1] : `${own[1]}/${own[2]}`;
  if (url.startsWith('node:')) return 'node:internal';
  return url;
}

export function summarise(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; the time of a sample is the delta that follows it.
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs].filter(([id]) => ['(idle)', '(program)'].includes(byId.get(id)!.callFrame.functionName)).reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;

  const fnSelf = new Map<string, number>();
  const fnIncl = new Map<string, number>();
  const areaSelf = new Map<string, number>();
  const areaIncl = new Map<string, number>();
  for (const [id, t] of selfUs) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)') continue;
    const key = `${name} ${areaOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fnSelf.set(key, (fnSelf.get(key) ?? 0) + t);
    const selfArea = areaOf(n.callFrame.url);
    areaSelf.set(selfArea, (areaSelf.get(selfArea) ?? 0) + t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (f.functionName === '(root)') continue;
      const area = areaOf(f.url);
      if (!seen.has(area)) {
        seen.add(area);
        areaIncl.set(area, (areaIncl.get(area) ?? 0) + t);
      }
      // Named functions of the project only: their inclusive time says which operation costs.
      const fn = `${f.functionName} ${area}:${f.lineNumber + 1}`;
      if (f.functionName && /^(server|bench)/.test(area) && !seen.has(fn)) {
        seen.add(fn);
        fnIncl.set(fn, (fnIncl.get(fn) ?? 0) + t);
      }
    }
  }
  const pct = (t: number) => `${((t / busy) * 100).toFixed(1).padStart(5)}%`;
  const out: string[] = [];
  out.push(`profile: ${(total / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (${((busy / total) * 100).toFixed(0)}%)`);
  out.push('self time, % of busy:');
  for (const [k, t] of [...fnSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${pct(t)}  ${k}`);
  out.push('inclusive time of the project\'s functions, % of busy:');
  for (const [k, t] of [...fnIncl].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${pct(t)}  ${k}`);
  out.push('self time by area, % of busy:');
  for (const [k, t] of [...areaSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${pct(t)}  ${k}`);
  out.push('inclusive time by area, % of busy:');
  for (const [k, t] of [...areaIncl].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${pct(t)}  ${k}`);
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  const topAt = process.argv.indexOf('--top');
  console.log(summarise(JSON.parse(fs.readFileSync(file, 'utf8')), topAt > 0 ? Number(process.argv[topAt + 1]) : 25));
}
