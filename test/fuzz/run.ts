/**
 * The fuzzer's driver: makes the sandbox and its canary tree, runs the cases in a worker process
 * (worker.ts), restarts it after a case that hung or crashed it, and sums up.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { canaryDiff, canaryPrint, emptyDir, makeSandbox, removeSandbox } from './sandbox.js';
import type { CaseResult, Target } from './cases.js';
import type { Scale } from './layer-cases.js';

export interface FuzzOptions {
  seed: string;
  cases: number;
  /** the first case number (cases `from` … `from + cases - 1` run) */
  from?: number;
  /** run only these case numbers */
  only?: number[];
  targets: Target[];
  scale: Scale;
  /** a case that takes longer than this (ms) is a hang */
  timeout: number;
  /** also run `calf load` for every Nth refused image case (0: never) */
  cliEvery: number;
  repo: string;
  /** hears each result as it comes */
  onResult?: (result: CaseResult) => void;
}

export interface FuzzReport {
  seed: string;
  results: CaseResult[];
  findings: CaseResult[];
  /** problems of the run itself: the canary changed outside any case, a worker that would not start */
  errors: string[];
  ms: number;
}

export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const box = makeSandbox();
  const baseline = canaryPrint(box);
  // Beside the sandbox, not in it: the canary is the sandbox as it was before this file existed.
  const baselineFile = `${box.dir}.baseline.json`;
  const results: CaseResult[] = [];
  const errors: string[] = [];
  // Interrupted (Ctrl-C, a kill): the worker goes, and so does the sandbox.
  const interrupted = (signal: NodeJS.Signals): void => {
    running?.kill('SIGKILL');
    removeSandbox(box);
    fs.rmSync(baselineFile, { force: true });
    process.exit(128 + os.constants.signals[signal]);
  };
  for (const signal of SIGNALS) process.once(signal, interrupted);
  try {
    fs.writeFileSync(baselineFile, JSON.stringify([...baseline]));
    // The fast entry builds its bundle on first use, through tsx, whose cache is in TMPDIR:
    // build it now, outside the sandbox's temp directory (which must stay empty).
    if (options.cliEvery) {
      spawnSync(process.execPath, [path.join(options.repo, 'bin/calf.cjs'), '--help'], { env: { ...process.env, CALF_ROOT: box.root }, stdio: 'ignore' });
    }
    const from = options.from ?? 0;
    let pending = options.only ? [...options.only] : Array.from({ length: options.cases }, (_, i) => from + i);
    while (pending.length) {
      const batch = await worker(pending, options, box, baselineFile);
      for (const r of batch.results) {
        results.push(r);
        options.onResult?.(r);
      }
      const ran = new Set(batch.results.map((r) => r.index));
      if (batch.died !== undefined) {
        const dead: CaseResult = {
          index: batch.died.index, target: options.targets[batch.died.index % options.targets.length]!, outcome: 'finding',
          findings: [batch.died.why], input: batch.died.input, fingerprint: '', ms: batch.died.ms,
        };
        // What the worker was doing is half done (a big tree, a temp directory): clear it here, untimed,
        // and look at the canary now, before the next worker starts on a dirty sandbox.
        for (const dir of [box.target, box.root, box.input, box.tmp]) emptyDir(dir);
        const diff = canaryDiff(baseline, canaryPrint(box));
        if (diff.length) dead.findings.push(`canary: ${diff.slice(0, 5).join('; ')}`);
        results.push(dead);
        options.onResult?.(dead);
        ran.add(batch.died.index);
      } else if (batch.results.length === 0) {
        errors.push(`the worker ran no case: ${batch.stderr.slice(-500)}`);
        break;
      }
      pending = pending.filter((i) => !ran.has(i));
    }
    const diff = canaryDiff(baseline, canaryPrint(box));
    if (diff.length) errors.push(`the canary tree changed: ${diff.join('; ')}`);
  } finally {
    for (const signal of SIGNALS) process.off(signal, interrupted);
    removeSandbox(box);
    fs.rmSync(baselineFile, { force: true });
  }
  return { seed: options.seed, results, findings: results.filter((r) => r.outcome === 'finding'), errors, ms: Math.round(performance.now() - started) };
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** The worker running now, for an interrupt to end. */
let running: ReturnType<typeof spawn> | undefined;

interface Batch {
  results: CaseResult[];
  died?: { index: number; input: string; why: string; ms: number };
  stderr: string;
}

/** Run cases in one worker until they are done, or it hangs or dies on one. */
function worker(indexes: number[], options: FuzzOptions, box: ReturnType<typeof makeSandbox>, baseline: string): Promise<Batch> {
  const args = {
    seed: options.seed, from: 0, to: 0, only: indexes, targets: options.targets, scale: options.scale, box, baseline, cliEvery: options.cliEvery, repo: options.repo,
  };
  const argsFile = `${baseline}.args.json`;
  fs.writeFileSync(argsFile, JSON.stringify(args));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(options.repo, 'test/fuzz/worker.ts'), argsFile], {
    cwd: options.repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CALF_ROOT: box.root },
  });
  running = child;
  const results: CaseResult[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  let current: { index: number; since: number; input: string } | undefined;
  let died: Batch['died'];
  const watchdog = setInterval(() => {
    // The big cases (100,000 entries, a tree 2,000 deep) get five times as long.
    const limit = current?.input.includes('big:') ? 5 * options.timeout : options.timeout;
    if (current && performance.now() - current.since > limit) {
      died = { index: current.index, input: current.input, why: `hang: no result after ${Math.round(limit / 1000)} s`, ms: Math.round(performance.now() - current.since) };
      child.kill('SIGKILL');
    }
  }, 250);
  createInterface({ input: child.stdout }).on('line', (line) => {
    let event: { start?: number; input?: string; result?: CaseResult };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return; // something printed by calf's code itself; stderr has the rest
    }
    if (event.start !== undefined) current = { index: event.start, since: performance.now(), input: event.input ?? '' };
    else if (event.input !== undefined && current) current.input = event.input;
    if (event.result) {
      results.push(event.result);
      current = undefined;
    }
  });
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      fs.rmSync(argsFile, { force: true });
      if (!died && current) {
        died = { index: current.index, input: current.input, why: `crash: the worker died (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 500)}`, ms: Math.round(performance.now() - current.since) };
      }
      resolve({ results, ...(died ? { died } : {}), stderr });
    });
  });
}
