// A bench child process that speaks in lines: those starting with 'BENCH ' are for the bench
// (JSON), the rest is the gateway's log (the first few are passed on to stderr).
import readline from 'node:readline';
import { spawn } from 'node:child_process';

export interface BenchChild {
  /** The next BENCH line, parsed. */
  next<T = any>(): Promise<T>;
  /** Writes a command line and resolves with its answer. */
  command<T = any>(cmd: string): Promise<T>;
  kill(): Promise<void>;
}

export function spawnBenchChild(script: string, env: NodeJS.ProcessEnv, nodeArgs: string[] = []): BenchChild {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`))));
  exited.catch(() => undefined);
  let logged = 0;
  const next = async () => {
    for (;;) {
      const { value, done } = await Promise.race([lines.next(), exited]);
      if (done) throw new Error(`${script} closed its output`);
      if (value.startsWith('BENCH ')) return JSON.parse(value.slice('BENCH '.length));
      if (++logged <= 5) process.stderr.write(`${script}: ${value}\n`);
    }
  };
  return {
    next,
    command(cmd) {
      child.stdin!.write(cmd + '\n');
      return next();
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(force);
    },
  };
}
