import test from 'ava';
import { execMappings, mappingSignature } from '../../../src/capture/tls/maps';

const MAPS = `55d0c0a00000-55d0c0a2b000 r--p 00000000 fd:01 1311   /usr/bin/python3.11
55d0c0a2b000-55d0c0d10000 r-xp 0002b000 fd:01 1311   /usr/bin/python3.11
7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0
7f1c2b200000-7f1c2b22a000 r--p 00000000 fd:01 2040   /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2b22a000-7f1c2b2a5000 r-xp 0002a000 fd:01 2040   /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2b2a5000-7f1c2b2b0000 r-xp 000a5000 fd:01 2040   /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2b300000-7f1c2b310000 r-xp 00000000 fd:01 3000   /opt/app/lib with space.so
7f1c2b400000-7f1c2b410000 r-xp 00000000 fd:01 3001   /tmp/old.so (deleted)
7ffd6b7e0000-7ffd6b801000 rw-p 00000000 00:00 0      [stack]
7ffd6b9f2000-7ffd6b9f4000 r-xp 00000000 00:00 0      [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]
`;

test('executable file mappings: one per file, no anonymous, special or deleted ones', (t) => {
  const m = execMappings(MAPS);
  t.deepEqual(m, [
    { range: '55d0c0a2b000-55d0c0d10000', dev: 'fd:01', inode: 1311, path: '/usr/bin/python3.11' },
    { range: '7f1c2b22a000-7f1c2b2a5000', dev: 'fd:01', inode: 2040, path: '/usr/lib/x86_64-linux-gnu/libssl.so.3' },
    { range: '7f1c2b300000-7f1c2b310000', dev: 'fd:01', inode: 3000, path: '/opt/app/lib with space.so' },
  ]);
});

test('the signature changes when a library is mapped, not when data mappings do', (t) => {
  const before = mappingSignature(execMappings(MAPS));
  t.is(mappingSignature(execMappings(MAPS + '7f1c2c000000-7f1c2c100000 rw-p 00000000 00:00 0\n')), before);
  t.not(mappingSignature(execMappings(MAPS + '7f1c2d000000-7f1c2d100000 r-xp 00000000 fd:01 4000 /usr/lib/x86_64-linux-gnu/libcrypto.so.3\n')), before);
});

test('empty and malformed text: nothing, no throw', (t) => {
  t.deepEqual(execMappings(''), []);
  t.deepEqual(execMappings('garbage\n\n12-34 r-xp zz\n'), []);
});
