import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SYSCALL_TABLES, syscallTable, syscalls } from './syscalls.js';

test('system call table: x64 and arm64 carry every call with the kernel numbers', () => {
  // arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h
  assert.deepEqual(syscallTable('x64'), { bpf: 321, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 });
  assert.deepEqual(syscallTable('arm64'), { bpf: 280, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 });
  assert.deepEqual(Object.keys(SYSCALL_TABLES.arm64).sort(), Object.keys(SYSCALL_TABLES.x64).sort(), 'the same calls on every architecture');
});

test('system call table: an unknown architecture fails with a clear error', () => {
  assert.throws(() => syscallTable('riscv64'), /no system call numbers for architecture 'riscv64' \(known: x64, arm64\)/);
});

test('system call table: this machine gets the table of process.arch', { skip: !(process.arch in SYSCALL_TABLES) }, () => {
  assert.equal(syscalls(), syscallTable(process.arch));
});
