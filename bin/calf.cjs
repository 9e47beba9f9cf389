#!/usr/bin/env node
// calf for people who just want calf: the latest solution, bundled into one JavaScript file and
// run by plain node, without tsx (`tsx solutions/NN-…/calf.ts` stays the way to learn from it).
//
// Plain JavaScript, since nothing may compile TypeScript on this path. The freshness check below
// is lib/runtime/bundle.ts's cachedBundle(), repeated: keep the two in step
// (test/lib/bundle.test.ts runs both against the same edits). On a miss, scripts/bundle.ts
// (through tsx, once) builds the bundle.
//
// CommonJS, because Node starts a CommonJS file ~20 ms sooner than an ES module (no ESM loader).
'use strict';
// CALF_TIMINGS (bench/breakdown.ts): when this file began, and when its bundle was found fresh.
const mark = process.env.CALF_TIMINGS
  ? (name) => require('node:fs').appendFileSync(process.env.CALF_TIMINGS, `${process.pid} ${(performance.timeOrigin + performance.now()).toFixed(3)} ${name}\n`)
  : () => {};
mark('entry');
const { createHash } = require('node:crypto');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const FORMAT = 3; // lib/runtime/bundle.ts's FORMAT

const repo = path.dirname(__dirname);
/** The level file to run: `$CALF_FAST_ENTRY`, else the latest solution. */
function levelFile() {
  if (process.env.CALF_FAST_ENTRY) return path.resolve(process.env.CALF_FAST_ENTRY);
  const solutions = path.join(repo, 'solutions');
  const latest = fs.readdirSync(solutions).filter((name) => /^\d\d-/.test(name)).sort().at(-1);
  return path.join(solutions, latest, 'calf.ts');
}
const entry = levelFile();

function hashFile(file) {
  try {
    return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}

function cachedBundle() {
  const cache = process.env.CALF_CACHE
    || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'calf', 'bundles');
  const dir = path.join(cache, createHash('sha256').update(fs.realpathSync(entry)).digest('hex').slice(0, 16));
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest.format !== FORMAT || manifest.node !== process.version || !Array.isArray(manifest.inputs)) return undefined;
  for (const [file, hash] of manifest.inputs) if (hashFile(file) !== hash) return undefined;
  const bundle = path.join(dir, path.basename(String(manifest.bundle)));
  return hashFile(bundle) === manifest.sha256 ? bundle : undefined;
}

let bundle = cachedBundle();
if (!bundle) {
  const built = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'scripts/bundle.ts'), entry], {
    cwd: repo, // where `--import tsx` is found
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (built.status !== 0) {
    process.stderr.write(`calf: could not bundle ${entry}\n`);
    process.exit(125);
  }
  bundle = built.stdout.toString().trim();
}
mark('checked');
require(bundle);
