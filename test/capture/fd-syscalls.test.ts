import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstArgIsFd, readFdSyscalls, tableNumber } from '../../src/capture/fd-syscalls';
import { syscallNumber } from '../../src/capture/syscall-names';

/** A sys_enter format as tracefs prints it, with these argument declarations. */
function format(name: string, ...fields: string[]): string {
  return [
    `name: sys_enter_${name}`,
    'ID: 1',
    'format:',
    '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;',
    '\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;',
    '',
    '\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;',
    ...fields.map((f, i) => `\tfield:${f};\toffset:${16 + 8 * i};\tsize:8;\tsigned:0;`),
    '',
    'print fmt: "..."',
  ].join('\n');
}

test('the first argument is an fd when it is an integer named like one, not a directory fd', (t) => {
  t.true(firstArgIsFd(format('read', 'unsigned int fd', 'char * buf', 'size_t count')));
  t.true(firstArgIsFd(format('readv', 'unsigned long fd', 'const struct iovec * vec')));
  t.true(firstArgIsFd(format('epoll_wait', 'int epfd', 'struct epoll_event * events')));
  t.true(firstArgIsFd(format('dup', 'unsigned int fildes')));
  t.true(firstArgIsFd(format('dup2', 'unsigned int oldfd', 'unsigned int newfd')));
  t.true(firstArgIsFd(format('pidfd_getfd', 'int pidfd', 'int fd')));
  t.true(firstArgIsFd(format('splice', 'int fd_in', 'loff_t * off_in')));
  t.true(firstArgIsFd(format('mq_timedsend', 'mqd_t mqdes', 'const char * u_msg_ptr')));
  t.true(firstArgIsFd(format('sendfile64', 'int out_fd', 'int in_fd')));
  t.false(firstArgIsFd(format('openat', 'int dfd', 'const char * filename')), 'a directory fd anchors a path');
  t.false(firstArgIsFd(format('linkat', 'int olddfd', 'const char * oldname')));
  t.false(firstArgIsFd(format('move_mount', 'int from_dfd', 'const char * from_pathname')));
  t.false(firstArgIsFd(format('open_by_handle_at', 'int mountdirfd', 'struct file_handle * handle')));
  t.false(firstArgIsFd(format('pipe', 'int * fildes')), 'a pointer to fds to fill');
  t.false(firstArgIsFd(format('getpid')), 'no argument');
  t.false(firstArgIsFd(format('kill', 'pid_t pid', 'int sig')));
});

test('tracepoint names map to table numbers, with the two SYSCALL_DEFINE spellings', (t) => {
  t.is(tableNumber('read', 'x86_64'), 0);
  t.is(tableNumber('newfstat', 'x86_64'), syscallNumber('fstat', 'x86_64'));
  t.is(tableNumber('sendfile64', 'x86_64'), syscallNumber('sendfile', 'x86_64'));
  t.is(tableNumber('pread64', 'x86_64'), syscallNumber('pread64', 'x86_64'), 'the name itself first');
  t.is(tableNumber('no_such_call', 'x86_64'), undefined);
  t.is(tableNumber('read', undefined), undefined);
});

test('readFdSyscalls reads every sys_enter format of a tracefs tree', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tracefs-'));
  try {
    const put = (name: string, text: string) => {
      fs.mkdirSync(path.join(root, 'events', 'syscalls', name), { recursive: true });
      fs.writeFileSync(path.join(root, 'events', 'syscalls', name, 'format'), text);
    };
    put('sys_enter_read', format('read', 'unsigned int fd'));
    put('sys_exit_read', 'not looked at');
    put('sys_enter_newfstat', format('newfstat', 'unsigned int fd'));
    put('sys_enter_openat', format('openat', 'int dfd'));
    put('sys_enter_made_up', format('made_up', 'int fd'));
    const r = readFdSyscalls(root, 'x86_64');
    t.deepEqual(r.numbers, [0, syscallNumber('fstat', 'x86_64')!].sort((a, b) => a - b));
    t.deepEqual(r.unmapped, ['made_up']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
