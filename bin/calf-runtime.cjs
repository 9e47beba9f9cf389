#!/usr/bin/env node
// calf-runtime: calf as an OCI runtime (level 17), runc's command line, for podman's --runtime
// and containerd's --runc-binary. The latest solution's bundle, as bin/calf.cjs runs it, with the
// hidden `runtime` command in front of runc's arguments. Engines call it without PATH or HOME:
// install it with node's absolute path in the #! line, or behind a launcher that has it.
'use strict';
process.argv.splice(2, 0, 'runtime');
require('./calf.cjs');
