/**
 * Terminals (lib/linux/pty.ts, termios.ts, ioctl.ts): what `calf run -t` and an OCI runtime's
 * `terminal: true` need. A pty from /dev/ptmx and from a devpts instance of its own (a container's),
 * the window size passed on, raw mode, and a pty slave as a session's controlling terminal.
 * Root only (the devpts mount).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import * as linux from '../../lib/linux/index.js';
import { repo } from '../support/paths.js';

let dir: string;
const fds: number[] = [];
/** Remember an fd to close at the end, whatever happens. */
const keep = (fd: number) => (fds.push(fd), fd);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-pty-'));
});
afterAll(() => {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed already
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A pty from the host's /dev/ptmx: master and slave fds. */
function openpty(): { master: number; slave: number } {
  const master = keep(linux.posix_openpt());
  linux.grantpt(master);
  linux.unlockpt(master);
  const slave = keep(fs.openSync(linux.ptsname_r(master), fs.constants.O_RDWR | fs.constants.O_NOCTTY));
  return { master, slave };
}

/** Read what is there on `fd` (waiting up to a few seconds for the first byte), or '' if nothing comes. */
function readNow(fd: number, wait = 5_000): string {
  if (!(linux.poll(fd, linux.POLLIN, wait) & linux.POLLIN)) return '';
  const buffer = Buffer.alloc(256);
  return buffer.toString('latin1', 0, fs.readSync(fd, buffer));
}

describe('a pty from /dev/ptmx', () => {
  it('posix_openpt gives a close-on-exec master whose slave ptsname_r names', () => {
    const { master, slave } = openpty();
    expect(linux.fcntl(master, linux.F_GETFD) & linux.FD_CLOEXEC).toBe(linux.FD_CLOEXEC);
    expect(linux.ptsname_r(master)).toMatch(/^\/dev\/pts\/\d+$/);
    expect(fs.fstatSync(slave).rdev).toBe(fs.statSync(linux.ptsname_r(master)).rdev);
  });

  it('passes a window size set on the master to the slave (TIOCSWINSZ, TIOCGWINSZ)', () => {
    const { master, slave } = openpty();
    const rows = 20 + Math.floor(Math.random() * 50);
    const cols = 80 + Math.floor(Math.random() * 100);
    linux.ioctl(master, linux.TIOCSWINSZ, linux.winsize({ ws_row: rows, ws_col: cols }));
    const ws = linux.winsize();
    linux.ioctl(slave, linux.TIOCGWINSZ, ws);
    expect(linux.winsizeOf(ws)).toEqual({ ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 });
  });

  it('cfmakeraw and tcsetattr turn echo and line editing off: what the master writes reaches the slave as is', () => {
    const { master, slave } = openpty();
    // cooked (a new pty's default): echoed back, CR turned into NL, and held until the line ends
    expect(linux.tcgetattr(slave).c_lflag & (linux.ICANON | linux.ECHO)).toBe(linux.ICANON | linux.ECHO);
    fs.writeSync(master, 'ab\r');
    expect(readNow(slave)).toBe('ab\n');
    expect(readNow(master)).toBe('ab\r\n');

    const t = linux.tcgetattr(slave);
    linux.cfmakeraw(t);
    expect(t.c_lflag & (linux.ICANON | linux.ECHO | linux.ISIG)).toBe(0);
    linux.tcsetattr(slave, linux.TCSANOW, t);
    expect(linux.tcgetattr(slave)).toEqual(t);
    fs.writeSync(master, 'x\r\x03');
    expect(readNow(slave)).toBe('x\r\x03'); // no CR→NL, ^C is a byte
    expect(readNow(master, 0)).toBe(''); // and no echo: the slave's read above means the line discipline is done
  });

  it('says which call failed on what is not a terminal', () => {
    const fd = keep(fs.openSync(path.join(dir, 'not-a-tty'), 'w'));
    expect(() => linux.tcgetattr(fd)).toThrow(`tcgetattr(${fd}): ENOTTY (Inappropriate ioctl for device)`);
    expect(() => linux.ioctl(fd, linux.TIOCGWINSZ, linux.winsize())).toThrow(`ioctl(${fd}, TIOCGWINSZ): ENOTTY (Inappropriate ioctl for device)`);
  });
});

describe('a pty from a devpts instance of its own (a container’s /dev/pts)', () => {
  it('numbers its ptys itself; TIOCGPTN and TIOCGPTPEER find the slave, ptsname_r names the host’s', () => {
    const pts = path.join(dir, 'pts');
    fs.mkdirSync(pts);
    linux.mount('devpts', pts, 'devpts', linux.MS_NOSUID | linux.MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');
    try {
      const master = keep(fs.openSync(path.join(pts, 'ptmx'), fs.constants.O_RDWR | fs.constants.O_NOCTTY));
      linux.unlockpt(master);
      const n = Buffer.alloc(4);
      linux.ioctl(master, linux.TIOCGPTN, n);
      expect(n.readUInt32LE(0)).toBe(0); // the first pty of this instance, whatever the host has open
      const peer = keep(linux.ioctl(master, linux.TIOCGPTPEER, fs.constants.O_RDWR | fs.constants.O_NOCTTY | linux.O_CLOEXEC));
      const file = (st: fs.Stats) => ({ dev: st.dev, ino: st.ino });
      expect(file(fs.fstatSync(peer))).toEqual(file(fs.statSync(path.join(pts, '0'))));
      // ptsname_r says /dev/pts/0: the host's instance's pty 0 (same major and minor, but another devpts), or none
      expect(linux.ptsname_r(master)).toBe('/dev/pts/0');
      expect(fs.statSync('/dev/pts').dev).not.toBe(fs.fstatSync(peer).dev);
      fs.writeSync(master, 'hello\n');
      expect(readNow(peer)).toBe('hello\n');
      fs.closeSync(peer);
      fs.closeSync(master);
    } finally {
      linux.umount2(pts, linux.MNT_DETACH);
    }
  });
});

describe('a controlling terminal', () => {
  it('a session leader takes a pty slave as its controlling terminal with TIOCSCTTY', async () => {
    const r = await execa(process.execPath, ['--import', 'tsx', path.join(repo, 'test/lib/fixtures/process-probe.ts'), 'session'], { cwd: repo, reject: false, timeout: 60_000 });
    expect(r.stderr).toBe('');
    const s = JSON.parse(r.stdout) as Record<string, number>;
    expect(s.ttyBefore).toBe(0); // setsid left it without one
    expect(s.ttyAfter).toBe(s.slaveRdev);
  });

  it('Node restores its own stdin’s terminal when it exits, raw mode set through tcsetattr included, but not when SIGKILLed', async () => {
    const { slave } = openpty();
    const raw = `const l = await import(${JSON.stringify(path.join(repo, 'lib/linux/index.ts'))}); const t = l.tcgetattr(0); l.cfmakeraw(t); l.tcsetattr(0, l.TCSANOW, t);`;
    const cooked = () => (linux.tcgetattr(slave).c_lflag & linux.ICANON) !== 0;
    const node = (code: string) => new Promise<number | string | null>((resolve) => {
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: repo, stdio: [slave, 'ignore', 'inherit'] })
        .on('exit', (status, signal) => resolve(signal ?? status));
    });
    expect(await node(`${raw} process.exit(0)`)).toBe(0);
    expect(cooked()).toBe(true);
    expect(await node(`${raw} process.kill(process.pid, 'SIGKILL')`)).toBe('SIGKILL');
    expect(cooked()).toBe(false); // nothing runs after SIGKILL: calf's -t must not be killed so, or restore from outside
  });
});
