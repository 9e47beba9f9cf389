// Tests are TypeScript ESM, compiled by swc (fast, no type-check: `npm run typecheck` does that).
// Run jest under `node --experimental-vm-modules`: test/board.ts and test/prove.ts do.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'es6' } }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // Each check starts containers (two node processes each): give them time, and don't flood two cores.
  // CALF_TEST_SLOW stretches it under emulation (see test/support/host.ts).
  testTimeout: 60_000 * (Number(process.env.CALF_TEST_SLOW) || 1),
  maxWorkers: 2,
  // Checks a level marks `it.concurrent` (each looks only at what it made) run this many at a time
  // within their section: one, unless CALF_CHECKS_AT_ONCE says more. The board sets it for the
  // level being worked on while that level's checks run alone (test/board.ts).
  maxConcurrency: Number(process.env.CALF_CHECKS_AT_ONCE) || 1,
};
