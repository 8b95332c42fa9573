import test from 'ava';
import { HOST_SYSCALL_ARCH, errnoName, syscallArch, syscallName, syscallNumber } from '../../src/capture/syscall-names';

test('x86_64 and arm64 tables carry the kernel numbers', (t) => {
  t.is(syscallName(0, 'x86_64'), 'read');
  t.is(syscallName(257, 'x86_64'), 'openat');
  t.is(syscallName(35, 'x86_64'), 'nanosleep');
  t.is(syscallName(63, 'arm64'), 'read');
  t.is(syscallName(56, 'arm64'), 'openat');
  t.is(syscallName(101, 'arm64'), 'nanosleep');
  t.is(syscallName(79, 'arm64'), 'newfstatat');
  t.is(syscallNumber('connect', 'x86_64'), 42);
  t.is(syscallNumber('connect', 'arm64'), 203);
  // Newer than the build machine's headers: entered by every return-probe trampoline (Linux 6.11+).
  t.is(syscallName(335, 'x86_64'), 'uretprobe');
});

test('unknown numbers keep their number instead of a guessed name', (t) => {
  t.is(syscallName(100000, 'x86_64'), 'syscall_100000');
  t.is(syscallName(0, undefined), 'syscall_0');
  t.is(errnoName(4095), 'errno_4095');
});

test('errno names, with the usual spelling for aliases', (t) => {
  t.is(errnoName(2), 'ENOENT');
  t.is(errnoName(11), 'EAGAIN');
  t.is(errnoName(111), 'ECONNREFUSED');
  t.is(errnoName(110), 'ETIMEDOUT');
  t.is(errnoName(104), 'ECONNRESET');
});

test('the architecture of this machine has a table', (t) => {
  t.not(HOST_SYSCALL_ARCH, undefined);
  t.is(syscallArch('x64'), 'x86_64');
  t.is(syscallArch('arm64'), 'arm64');
  t.is(syscallArch('ia32'), undefined);
});
