/**
 * The fuzzer's worker process: runs cases `--from` … `--to` of a seed and writes one JSON line
 * per event on stdout (`{"start":N}` before case N, then its result). The parent (run.ts) watches
 * it: a case that hangs (a FIFO opened for reading) or kills the process is a finding too, and
 * the parent starts a new worker after it.
 */
import fs from 'node:fs';
import { makeCase, runCase, targetOf, type CaseContext, type Target } from './cases.js';
import type { Scale } from './layer-cases.js';
import type { Sandbox } from './sandbox.js';

const args = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as {
  seed: string; from: number; to: number; targets: Target[]; scale: Scale; box: Sandbox; baseline: string; cliEvery: number; repo: string; only?: number[];
};
// calf's archive extraction goes to the temp directory: into the sandbox, where leftovers show.
process.env.TMPDIR = args.box.tmp;
const ctx: CaseContext = {
  box: args.box, seed: args.seed, scale: args.scale, cliEvery: args.cliEvery, repo: args.repo,
  baseline: new Map(JSON.parse(fs.readFileSync(args.baseline, 'utf8')) as [string, string][]),
};

let current = -1;
const stray: string[] = [];
process.on('unhandledRejection', (reason) => stray.push(`unhandled rejection: ${(reason as Error)?.stack?.split('\n').slice(0, 3).join(' ') ?? String(reason)}`));
process.on('uncaughtException', (error) => stray.push(`uncaught exception: ${error.stack?.split('\n').slice(0, 3).join(' ') ?? String(error)}`));

/** One JSON line on stdout, all of it: a pipe takes a long line in parts (writeSync may write less, or throw EAGAIN). */
function emit(value: unknown): void {
  let bytes = Buffer.from(`${JSON.stringify(value)}\n`);
  while (bytes.length) {
    try {
      bytes = bytes.subarray(fs.writeSync(1, bytes));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

const indexes = args.only ?? Array.from({ length: args.to - args.from }, (_, i) => args.from + i);
for (const index of indexes) {
  current = index;
  emit({ start: index, input: '(the generator was making it)' });
  const made = makeCase(index, targetOf(index, args.targets), ctx);
  emit({ input: made.input });
  const result = await runCase(made, ctx);
  // Give a stray stream error a moment to surface while this case is still the current one.
  await new Promise((resolve) => setImmediate(resolve));
  if (stray.length) {
    result.findings.push(...stray.splice(0).map((s) => `crash: ${s}`));
    result.outcome = 'finding';
  }
  // The line is what calf would print; a very long one is a finding already, and its first 2000 characters show why.
  if (result.line && result.line.length > 2000) result.line = `${result.line.slice(0, 2000)}… (${result.line.length} characters)`;
  emit({ result });
}
emit({ done: current });
