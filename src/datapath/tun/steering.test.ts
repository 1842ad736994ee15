import { test } from 'node:test';
import assert from 'node:assert/strict';
import { steeringProgram } from './steering.js';

test('steering program: well-formed for 0, 1 and many VIPs; jumps stay inside the program', () => {
  for (const n of [0, 1, 5]) {
    const code = steeringProgram(Array.from({ length: n }, (_, i) => 0xcb007100 + i), 0xffffff00);
    const count = code.length / 8;
    assert.equal(code[count * 8 - 8], 0x95, 'ends with exit');
    for (let i = 0; i < count; i++) {
      const op = code[i * 8]!;
      if ((op & 0x07) === 0x05 || (op & 0x07) === 0x06) {
        if (op === 0x95) continue;
        const target = i + 1 + code.readInt16LE(i * 8 + 2);
        assert.ok(target > i && target < count, `insn ${i} jumps to ${target} of ${count} (${n} VIPs)`);
      }
    }
    if (n === 0) assert.equal(count, 8, 'no inbound block without VIPs');
  }
});
