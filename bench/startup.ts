// npm run bench (after `npm run build`): the CPU a `checkstand serve` process spends from spawn to
// its first 200, on a fresh SQLite file, compiled (dist/, what the command runs) beside the same
// sources run through tsx (what it ran before the build existed). The child's CPU is read from
// /proc/<pid>/stat at the moment the 200 arrives, so the figure is the process's own, threads
// included. The demo app and shop are off: the shop binds port 4000 and starts after the gateway
// answers anyway.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseEntry } from '../bin/entry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.BENCH_STARTUP_ROUNDS ?? 5);
const GOAL_CPU_MS = 1000;

// The command as it is, and as bin/checkstand.js ran it before the build: tsx's loader, then the sources.
const COMPILED_ARGS = ['bin/checkstand.js', 'serve'];
const TSX_ARGS = ['--input-type=module', '-e', `import { register } from 'tsx/esm/api'; register(); const { main } = await import('./server/cli/main.ts'); await main(['serve']);`];

const entry = chooseEntry(ROOT);
if (!entry.compiled) throw new Error(`checkstand serve would run the sources (${entry.reason}): run npm run build first`);
if (!fs.existsSync('/proc/self/stat')) throw new Error('bench/startup.ts reads the child CPU time from /proc (Linux only)');
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface Sample {
  cpuMs: number;
  wallMs: number;
  rssMb: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/** utime + stime of a live process, in ms (fields 14 and 15 of /proc/<pid>/stat, after the command name). */
function cpuMsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

function rssMbOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

async function startOnce(args: string[]): Promise<Sample> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-startup-'));
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: `sqlite:${path.join(dir, 'startup.db')}`,
      CHECKSTAND_DATA_DIR: dir,
      CHECKSTAND_DEMO: 'false',
      LOG_LEVEL: 'warn',
    },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr.trim()}`))));
  try {
    for (;;) {
      const ok = await Promise.race([
        fetch(`http://127.0.0.1:${port}/`).then((r) => r.arrayBuffer().then(() => r.status === 200), () => false),
        exited,
      ]);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    return { cpuMs: cpuMsOf(child.pid!), wallMs: performance.now() - started, rssMb: rssMbOf(child.pid!) };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once('exit', r) : r(undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** What node itself spends starting on this machine (a busy machine inflates every figure alike). */
function nodeAloneMs(): number {
  const out = execFileSync(process.execPath, ['-e', 'const u = process.cpuUsage(); process.stdout.write(String((u.user + u.system) / 1000))'], { encoding: 'utf8' });
  return Number(out);
}

// Alternating rounds, so a busy moment on a shared machine weighs on both the same.
const compiled: Sample[] = [];
const tsx: Sample[] = [];
const bare: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  compiled.push(await startOnce(COMPILED_ARGS));
  tsx.push(await startOnce(TSX_ARGS));
  bare.push(nodeAloneMs());
}
const line = (name: string, s: Sample[]) =>
  `${name.padEnd(28)} CPU ${String(median(s.map((x) => x.cpuMs)).toFixed(0)).padStart(5)} ms   wall ${median(s.map((x) => x.wallMs)).toFixed(0).padStart(5)} ms   RSS ${median(s.map((x) => x.rssMb)).toFixed(0).padStart(4)} MB`;
console.log(`startup to the first 200 on an empty SQLite database, median of ${ROUNDS} alternating rounds`);
console.log(line('compiled (checkstand serve)', compiled));
console.log(line('sources through tsx', tsx));
console.log(`${'node -e (no code at all)'.padEnd(28)} CPU ${median(bare).toFixed(0).padStart(5)} ms   load average ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} CPUs`);
const cpu = median(compiled.map((x) => x.cpuMs));
console.log(`compiled start: ${cpu.toFixed(0)} ms of CPU (goal ≤ ${GOAL_CPU_MS} ms)${cpu > GOAL_CPU_MS ? '  OVER THE GOAL' : ''}`);
