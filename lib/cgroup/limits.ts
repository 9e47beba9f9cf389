/**
 * `docker run`'s resource flags, parsed with Docker's spellings and value rules, and the
 * conversions between what a flag means and what a cgroup file takes. A bad value throws the
 * one-line error calf prints before it exits 125, as `docker run --memory 12XB` does.
 * @see https://docs.docker.com/engine/containers/resource_constraints/
 * @module
 */
import os from 'node:os';
import { CalfError } from '../core/errors.js';
import type { Resources } from '../core/spec.js';

/** Docker's smallest `--memory` (the daemon refuses less: "Minimum memory limit allowed is 6MB"). */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** The CFS period calf uses (Docker's and the kernel's default): `--cpus` is the quota over it. */
export const CPU_PERIOD_US = 100_000;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/**
 * A size in bytes as Docker reads `--memory`/`--memory-swap` (go-units' RAMInBytes): a number,
 * fractions allowed, and a binary unit b, k, m, g, t or p, any case, with an optional `b`/`ib`:
 * `64m`, `1.5g`, `512MiB`.
 */
export function parseBytes(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$/i.exec(text) ?? /^(\d+(?:\.\d+)?) ?(b)$/i.exec(text);
  if (!match) throw new CalfError(`invalid argument ${JSON.stringify(text)} for "${flag}" flag: invalid size: '${text}'`);
  return Math.floor(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!);
}

/** `-m, --memory`: a size, at least {@link MIN_MEMORY}. */
export function parseMemory(text: string): number {
  const bytes = parseBytes('-m, --memory', text);
  if (bytes < MIN_MEMORY) throw new CalfError(`minimum memory limit allowed is 6MB, got ${text}`);
  return bytes;
}

/** `--memory-swap`: memory plus swap, as a size, or -1 for unlimited swap. */
export function parseMemorySwap(text: string): number {
  return text === '-1' ? -1 : parseBytes('--memory-swap', text);
}

/** Docker's checks across the two memory flags (daemon/daemon_unix.go). */
export function checkMemory(memory: number | undefined, memorySwap: number | undefined): void {
  if (memorySwap !== undefined && memory === undefined) {
    throw new CalfError('--memory-swap needs --memory: you should always set the memory limit when using the memoryswap limit');
  }
  if (memorySwap !== undefined && memorySwap !== -1 && memorySwap < memory!) {
    throw new CalfError('minimum memoryswap limit should be larger than memory limit (--memory-swap is memory plus swap)');
  }
}

/** `--cpus`: a decimal number of CPUs, from 0.01 to the number this machine has. */
export function parseCpus(text: string): number {
  const cpus = /^\d*\.?\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(cpus)) throw new CalfError(`invalid argument ${JSON.stringify(text)} for "--cpus" flag: failed to parse ${text} as a rational number`);
  const n = os.availableParallelism();
  if (cpus < 0.01 || cpus > n) throw new CalfError(`range of CPUs is from 0.01 to ${n}.00, as there are only ${n} CPUs available`);
  return cpus;
}

/** `-c, --cpu-shares`: a relative weight, 2 to 262144 (cgroup v1's cpu.shares range; 1024 is the default). */
export function parseCpuShares(text: string): number {
  const shares = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(shares)) throw new CalfError(`invalid argument ${JSON.stringify(text)} for "-c, --cpu-shares" flag: strconv.ParseInt: parsing ${JSON.stringify(text)}: invalid syntax`);
  if (shares < 2 || shares > 262144) throw new CalfError(`invalid --cpu-shares ${shares}: the range is 2 to 262144`);
  return shares;
}

/** `--pids-limit`: the most processes (and threads) the container may have; 0 or -1: no limit. */
export function parsePidsLimit(text: string): number {
  if (!/^-?\d+$/.test(text)) throw new CalfError(`invalid argument ${JSON.stringify(text)} for "--pids-limit" flag: strconv.ParseInt: parsing ${JSON.stringify(text)}: invalid syntax`);
  return Number(text);
}

/**
 * cgroup v1's `cpu.shares` (2–262144, default 1024) as v2's `cpu.weight` (1–10000, default 100),
 * runc's linear map (libcontainer/cgroups/utils.go ConvertCPUSharesToCgroupV2Value).
 */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** The resource flags, as `calf run` got them. */
export interface ResourceFlags {
  cpus?: number | undefined;
  cpuShares?: number | undefined;
  memory?: number | undefined;
  memorySwap?: number | undefined;
  pidsLimit?: number | undefined;
}

/**
 * The flags as the spec's `linux.resources` (what `docker run` hands containerd, and it runc):
 * `--cpus N` is N × {@link CPU_PERIOD_US} µs of CPU time per period; `--memory-swap` is memory
 * plus swap, twice `--memory` when not given (Docker's default), -1 for no limit; a pids limit
 * of 0 or -1 sets none. Only what was given; Docker's checks across flags first.
 */
export function resourcesOf(flags: ResourceFlags): Resources {
  checkMemory(flags.memory, flags.memorySwap);
  const resources: Resources = {};
  if (flags.cpus !== undefined || flags.cpuShares !== undefined) {
    resources.cpu = {
      ...(flags.cpus === undefined ? {} : { quota: Math.round(flags.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US }),
      ...(flags.cpuShares === undefined ? {} : { shares: flags.cpuShares }),
    };
  }
  if (flags.memory !== undefined) resources.memory = { limit: flags.memory, swap: flags.memorySwap ?? 2 * flags.memory };
  if (flags.pidsLimit !== undefined && flags.pidsLimit > 0) resources.pids = { limit: flags.pidsLimit };
  return resources;
}
