/**
 * `tsx scripts/bundle.ts FILE…`: make sure each level file's bundle (what the init stage and the
 * fast entry `bin/calf.cjs` run) is built and current, and print its path.
 */
import { ensureBundle } from '../lib/runtime/bundle.js';

for (const file of process.argv.slice(2)) process.stdout.write(`${await ensureBundle(file)}\n`);
