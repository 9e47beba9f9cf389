/** lookupUser (lib/runtime/user.ts): Docker's --user rules against an image's passwd and group files. */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lookupUser } from '../../lib/runtime/user.js';

let dir: string;
let files: { passwd: string; group: string };
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-user-'));
  files = { passwd: path.join(dir, 'passwd'), group: path.join(dir, 'group') };
  fs.writeFileSync(files.passwd, 'root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:www:/var/www:/bin/false\n# a comment\n');
  fs.writeFileSync(files.group, 'root:x:0:\nweb:x:33:\nstaff:x:50:web,other\nlog:x:4:web\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('lookupUser', () => {
  it('finds a name, with its primary group, home and memberships', () => {
    expect(lookupUser('web', files)).toEqual({ uid: 33, gid: 33, groups: [50, 4], home: '/var/www' });
  });

  it('takes a uid that passwd knows as that user, and one it does not as gid 0 and home /', () => {
    expect(lookupUser('33', files)).toEqual({ uid: 33, gid: 33, groups: [50, 4], home: '/var/www' });
    expect(lookupUser('4242', files)).toEqual({ uid: 4242, gid: 0, groups: [], home: '/' });
  });

  it('takes :group by name or by gid, and leaves the chosen primary group out of the others', () => {
    expect(lookupUser('web:staff', files)).toEqual({ uid: 33, gid: 50, groups: [4], home: '/var/www' });
    expect(lookupUser('4242:777', files)).toEqual({ uid: 4242, gid: 777, groups: [], home: '/' });
  });

  it('refuses names that are not there, and malformed specs, naming them', () => {
    expect(() => lookupUser('bob', files)).toThrow('unable to find user bob: no matching entries in passwd file');
    expect(() => lookupUser('web:nogroup', files)).toThrow('unable to find group nogroup: no matching entries in group file');
    expect(() => lookupUser('web:', files)).toThrow(/invalid user "web:"/);
    expect(() => lookupUser('a:b:c', files)).toThrow(/invalid user/);
  });

  it('works for numeric users in an image without passwd or group files', () => {
    expect(lookupUser('0', { passwd: path.join(dir, 'none'), group: path.join(dir, 'none') })).toEqual({ uid: 0, gid: 0, groups: [], home: '/' });
  });
});
