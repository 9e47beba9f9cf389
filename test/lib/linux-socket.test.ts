/**
 * File descriptors over Unix sockets (lib/linux/socket.ts): `sendmsg`/`recvmsg` with
 * `SCM_RIGHTS`, as an OCI runtime hands the engine a pty master through `--console-socket`
 * (level 17). Each fd received is used on the receiving side, so only a real fd passes.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as linux from '../../lib/linux/index.js';

let dir: string;
const fds: number[] = [];
/** Remember an fd to close at the end, whatever happens. */
const keep = (fd: number) => (fds.push(fd), fd);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-socket-'));
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

const pair = () => linux.socketpair(linux.AF_UNIX, linux.SOCK_STREAM | linux.SOCK_CLOEXEC).map(keep) as [number, number];
const cloexec = (fd: number) => (linux.fcntl(fd, linux.F_GETFD) & linux.FD_CLOEXEC) === linux.FD_CLOEXEC;

describe('SCM_RIGHTS over a socketpair', () => {
  it('gives the receiver its own fds for the same open files, close-on-exec', () => {
    const [a, b] = pair();
    const file = path.join(dir, 'shared');
    const w = keep(fs.openSync(file, 'w'));
    const [r, wr] = [keep(fs.openSync('/etc/hostname', 'r')), keep(fs.openSync(file, 'r'))];
    expect(linux.sendmsg(a, { iov: [Buffer.from('fds')], control: [linux.scm_rights([w, r])] })).toBe(3);
    const got = linux.recvmsg(b, 16, linux.CMSG_SPACE(4 * 2));
    expect(got.data.toString()).toBe('fds');
    expect(got.msg_flags & linux.MSG_CTRUNC).toBe(0);
    const [w2, r2] = linux.scm_rights_fds(got.control).map(keep);
    expect([w2, r2].every((fd) => fd !== w && fd !== r && cloexec(fd!))).toBe(true);
    // the same open file description: one offset, so the two writes follow each other
    fs.writeSync(w2!, 'through the received fd, ');
    fs.writeSync(w, 'then the original\n');
    expect(fs.readFileSync(wr, 'utf8')).toBe('through the received fd, then the original\n');
    expect(fs.readFileSync(r2!, 'utf8')).toBe(fs.readFileSync('/etc/hostname', 'utf8'));
  });

  it('says MSG_CTRUNC when the control buffer holds fewer fds than were sent, and delivers those that fit', () => {
    const [a, b] = pair();
    const p = keep(fs.openSync('/dev/null', 'r'));
    linux.sendmsg(a, { iov: [Buffer.from('x')], control: [linux.scm_rights([p, p, p])] });
    const got = linux.recvmsg(b, 1, linux.CMSG_SPACE(4));
    expect(got.msg_flags & linux.MSG_CTRUNC).toBe(linux.MSG_CTRUNC);
    // two, not one: CMSG_SPACE(4) is 24 bytes on 64-bit, and the kernel fills its padding with a second fd
    expect(linux.scm_rights_fds(got.control).map(keep)).toHaveLength(2);
  });

  it('reads 0 bytes and no fds once the peer is closed', () => {
    const [a, b] = pair();
    fs.closeSync(a);
    expect(linux.recvmsg(b, 16, linux.CMSG_SPACE(4))).toEqual({ data: Buffer.alloc(0), control: [], msg_flags: linux.MSG_CMSG_CLOEXEC });
  });
});

describe('an OCI --console-socket', () => {
  it('carries a pty master from the runtime to the engine, which then talks to the command’s terminal', () => {
    // the engine (conmon, containerd's shim): listens on a socket path it passes to the runtime
    const sockPath = path.join(dir, 'console.sock');
    const listening = keep(linux.socket(linux.AF_UNIX, linux.SOCK_STREAM | linux.SOCK_CLOEXEC, 0));
    linux.bind(listening, linux.sockaddr_un(sockPath));
    linux.listen(listening, 1);
    // the runtime: opens the pty, connects, sends the master with the pty's name as the data
    const master = keep(linux.posix_openpt());
    linux.unlockpt(master);
    const slave = keep(fs.openSync(linux.ptsname_r(master), fs.constants.O_RDWR | fs.constants.O_NOCTTY));
    const conn = keep(linux.socket(linux.AF_UNIX, linux.SOCK_STREAM | linux.SOCK_CLOEXEC, 0));
    linux.connect(conn, linux.sockaddr_un(sockPath));
    linux.sendmsg(conn, { iov: [Buffer.from(linux.ptsname_r(master))], control: [linux.scm_rights([master])] });
    fs.closeSync(conn);
    // the engine: accepts, receives, and has the terminal's master
    const accepted = keep(linux.accept4(listening));
    const got = linux.recvmsg(accepted, 64, linux.CMSG_SPACE(4));
    expect(got.data.toString()).toBe(linux.ptsname_r(master));
    const [engineMaster] = linux.scm_rights_fds(got.control).map(keep);
    fs.writeSync(engineMaster!, 'typed\n');
    const buffer = Buffer.alloc(64);
    expect(linux.poll(slave, linux.POLLIN, 5_000) & linux.POLLIN).toBe(linux.POLLIN);
    expect(buffer.toString('latin1', 0, fs.readSync(slave, buffer))).toBe('typed\n');
  });

  it('names the socket path when connect fails, and refuses a path sockaddr_un cannot hold', () => {
    const s = keep(linux.socket(linux.AF_UNIX, linux.SOCK_STREAM | linux.SOCK_CLOEXEC, 0));
    const missing = path.join(dir, 'no-such.sock');
    expect(() => linux.connect(s, linux.sockaddr_un(missing))).toThrow(`connect(${s}, ${JSON.stringify(missing)}): ENOENT (No such file or directory)`);
    expect(() => linux.sockaddr_un(`/${'x'.repeat(107)}`)).toThrow('socket path too long (107 bytes at most)');
    expect(linux.sockaddr_un(`/${'x'.repeat(106)}`)).toHaveLength(110);
  });
});

describe('the CMSG_* macros', () => {
  it('pad a control message to 8 bytes, after a 16-byte header, as glibc does on 64-bit', () => {
    expect([linux.CMSG_LEN(4), linux.CMSG_SPACE(4), linux.CMSG_SPACE(8), linux.CMSG_SPACE(12)]).toEqual([20, 24, 24, 32]);
  });
});
