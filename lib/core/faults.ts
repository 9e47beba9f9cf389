/**
 * Named points where a test (or the soak) can have calf killed, to prove that whatever a SIGKILL
 * leaves, `calf cleanup` removes. `CALF_FAULT=<point>` makes calf SIGKILL itself when it gets
 * there; without it a point costs one comparison. SIGKILL, not an exception: nothing of calf's
 * (no exit handler, no finally) runs, exactly as when a user or the OOM killer kills it.
 * @module
 */

import { mark } from './timing.js';

/** The points calf passes on a run, in order, then the one of `calf exec`. */
export const FAULT_POINTS = [
  'before-cgroup', // the container directory and record exist; its cgroup does not yet
  'init-waiting', // the init stage said "ready" and blocks until the parent says "go"
  'after-host-side', // the parent connected the sandbox (veth) and joined the cgroup
  'before-handover', // a -d monitor: the container runs, calf run -d still waits for its word (level 15)
  'during-teardown', // the container has ended; the first teardown step ran, and left its record
  'exec-joined', // calf exec: the exec stage joined the container's cgroup and namespaces; its command has not started
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

const armed = process.env.CALF_FAULT;

/** SIGKILL this process here when `CALF_FAULT` names this point. */
export function faultPoint(point: FaultPoint): void {
  mark(point);
  if (armed === point) process.kill(process.pid, 'SIGKILL');
}
