/**
 * Level 11: the command runs as the user `--user` names (or the image's User), resolved in the
 * image's own /etc/passwd and /etc/group, with that user's groups and none of calf's.
 */
import { describe, it, expect } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { execa } from 'execa';
import { run, expectExit, calfRoot, calfEnv, CALF_ARGS, calfNode, repo, startContainer } from '../support/target.js';
import { waitForOutput } from '../support/background.js';
import { token } from '../support/canary.js';
import { slow } from '../support/host.js';

/** Files named `name` anywhere under the test store's container directories. */
function findInContainers(dir: string, name: string): string[] {
  let found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.name === name) found.push(full);
    else if (entry.isDirectory() && !entry.isSymbolicLink()) found = found.concat(findInContainers(full, name));
  }
  return found;
}

describe('11 user', () => {
  describe('Switching user', () => {
    it('runs the command as a user named in the image’s passwd, or as a bare uid:gid', async () => {
      const [uid, gid] = [randomInt(2000, 60000), randomInt(2000, 60000)];
      const [named, numeric] = await Promise.all([
        run(['--user', 'calf', 'busybox', 'id']),
        run(['-u', `${uid}:${gid}`, 'busybox', 'id']),
      ]);
      expectExit(named, 0);
      expect(named.stdout).toBe('uid=1000(calf) gid=1000(calf)\n');
      expectExit(numeric, 0);
      expect(numeric.stdout).toBe(`uid=${uid} gid=${gid}\n`);
    });

    it('sets HOME from passwd when the environment has none, and lets -e HOME win', async () => {
      const home = `/tmp/${token()}`;
      const [fromPasswd, fromEnv] = await Promise.all([
        run(['-u', 'calf', 'busybox', 'sh', '-c', 'echo "$HOME $(id -u)"']),
        run(['-u', 'calf', '-e', `HOME=${home}`, 'busybox', 'sh', '-c', 'echo "$HOME $(id -u)"']),
      ]);
      expect(fromPasswd.stdout).toBe('/home/calf 1000\n');
      expect(fromEnv.stdout).toBe(`${home} 1000\n`);
    });

    it('refuses a user the image does not know, with 125 and one line', async () => {
      const name = `nobody-${token()}`;
      const r = await run(['--user', name, 'busybox', 'echo', 'never printed']);
      expectExit(r, 125);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([`calf: unable to find user ${name}: no matching entries in passwd file`]);
    });
  });

  describe('Groups', () => {
    it('drops the supplementary groups calf had, as root and as a user', async () => {
      const group = randomInt(2000, 60000);
      // setpriv starts calf with one more supplementary group, as a login may have given it
      const calf = (args: string[]) => execa('setpriv', ['--groups', String(group), calfNode, ...CALF_ARGS(),
        'run', ...args], { cwd: repo, reject: false, timeout: 45_000 * slow, env: calfEnv() });
      const script = 'echo "inside: $(grep Groups /proc/self/status)"; echo ready; read line';
      const asRoot = calf(['busybox', 'sh', '-c', script]);
      const out = await waitForOutput(asRoot, 'ready');
      const parent = fs.readFileSync(`/proc/${asRoot.pid}/status`, 'utf8').match(/^Groups:(.*)$/m)![1]!.trim();
      asRoot.stdin!.end('\n');
      expectExit(await asRoot, 0);
      const asUser = await calf(['-u', 'calf', 'busybox', 'grep', 'Groups', '/proc/self/status']);
      expectExit(asUser, 0);
      expect({ calfHad: parent, root: out.split('\n')[0]!.trim(), user: asUser.stdout.trim() })
        .toEqual({ calfHad: String(group), root: 'inside: Groups:', user: 'Groups:' });
    });
  });

  describe('Permissions', () => {
    it('keeps a root-only directory closed to a user, and open to root', async () => {
      const script = 'ls /root >/dev/null; echo "status $?"';
      const [asUser, asRoot] = await Promise.all([run(['-u', 'calf', 'busybox', 'sh', '-c', script]), run(['busybox', 'sh', '-c', script])]);
      expect({ user: asUser.stdout, root: asRoot.stdout }).toEqual({ user: 'status 1\n', root: 'status 0\n' });
      expect(asUser.stderr).toMatch(/Permission denied/);
    });

    it('shows the host the user’s ids on a file the container writes', async () => {
      const [uid, gid, name] = [randomInt(2000, 60000), randomInt(2000, 60000), `calf-owned-${token()}`];
      const container = await startContainer(['-u', `${uid}:${gid}`, 'busybox'], `echo hi > /tmp/${name}`);
      try {
        const files = findInContainers(path.join(calfRoot(), 'containers'), name);
        expect(files).toHaveLength(1);
        const st = fs.statSync(files[0]!);
        expect({ uid: st.uid, gid: st.gid }).toEqual({ uid, gid });
      } finally {
        await container.finish();
      }
    });
  });
});
