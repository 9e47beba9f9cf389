/**
 * Level 05: the container has a host name and System V IPC objects of its own (UTS and IPC
 * namespaces), and the host's stay as they were.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { run, expectExit, repo, startContainer } from '../support/target.js';
import { token } from '../support/canary.js';

const hostHostname = () => fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
/** The keys of the System V message queues the host can see (/proc/sysvipc/msg, column 1). */
const hostQueueKeys = () => fs.readFileSync('/proc/sysvipc/msg', 'utf8').trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));

describe('05 uts-ipc', () => {
  describe('The UTS namespace', () => {
    it('sets the host name given with --hostname, inside only', async () => {
      const name = `calf-${token()}`;
      const before = hostHostname();
      const container = await startContainer(['--hostname', name, 'busybox'], 'hostname; cat /proc/sys/kernel/hostname');
      const during = hostHostname();
      expectExit(await container.finish(), 0);
      expect({ inside: container.output, hostDuring: during, hostAfter: hostHostname() })
        .toEqual({ inside: `${name}\n${name}\n`, hostDuring: before, hostAfter: before });
    });

    it('names the container after its short id when no --hostname is given', async () => {
      const [a, b] = await Promise.all([run(['busybox', 'hostname']), run(['busybox', 'hostname'])]);
      expectExit(a, 0);
      expect(a.stdout).toMatch(/^[0-9a-f]{12}\n$/);
      expect(b.stdout).toMatch(/^[0-9a-f]{12}\n$/);
      expect(a.stdout).not.toBe(b.stdout);
    });

    it('refuses a host name that is not one, with 125 and one line', async () => {
      const r = await run(['--hostname', 'not a name!', 'busybox', 'hostname']);
      expectExit(r, 125);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('hostname');
    });
  });

  describe('The IPC namespace', () => {
    const keys: number[] = [];
    // Every queue a check may have made goes, whatever the check found: a container without an IPC
    // namespace of its own makes its queue in the host's, where it would outlive the test.
    afterAll(() => {
      for (const key of keys) {
        if (hostQueueKeys().includes(key)) execFileSync('ipcrm', ['-Q', String(key)], { stdio: 'ignore' });
      }
    });

    it("cannot see a System V message queue the host made", async () => {
      const key = randomInt(100_000, 2 ** 31 - 1);
      keys.push(key);
      execFileSync(path.join(repo, 'build/helpers/sysv-queue'), [String(key)], { stdio: 'ignore' }); // util-linux's ipcmk picks its own key
      expect(hostQueueKeys()).toContain(key); // the host can
      const r = await run(['calf-test', 'sh', '-c', 'cat /proc/sysvipc/msg; echo done']);
      expectExit(r, 0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^\s*key\s+msqid/); // the container read the table...
      expect(lines.at(-1)).toBe('done');
      expect(r.stdout).not.toMatch(new RegExp(`^\\s*${key}\\s`, 'm')); // ...and the host's queue is not in it
    });

    it('keeps a queue made inside out of the host’s sight', async () => {
      const key = randomInt(100_000, 2 ** 31 - 1);
      keys.push(key); // the afterAll removes it if it is on the host: before any check can fail
      const container = await startContainer('calf-test', `sysv-queue ${key} >/dev/null && grep -c "^ *${key} " /proc/sysvipc/msg`);
      const hostDuring = hostQueueKeys();
      expectExit(await container.finish(), 0);
      expect({ inside: container.output, hostSeesIt: hostDuring.includes(key) }).toEqual({ inside: '1\n', hostSeesIt: false });
      expect(hostQueueKeys()).not.toContain(key);
    });
  });
});
