import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sys } from './sys.js';
import { libc } from './syscalls.js';
import { BufferRing, IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, Uring } from './uring.js';

// The mechanics of the ring on pipes (no TUN or root needed): a multishot read into provided
// buffers, a write from one of them, running out of buffers, and re-arming.
const pipe2 = libc.func('int pipe2(_Out_ int *fds, int flags)') as (fds: number[], flags: number) => number;
const O_NONBLOCK = 0o4000;

function pipe(): [number, number] {
  const fds = [0, 0];
  assert.equal(pipe2(fds, O_NONBLOCK), 0);
  return [fds[0]!, fds[1]!];
}

function probe(): string | null {
  try {
    new Uring(8, 10).close();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
const unavailable = probe();

test('io_uring: multishot read into provided buffers, write from a buffer, ENOBUFS and re-arm', { skip: unavailable ?? false }, () => {
  const ring = new Uring(8, 50);
  const bufs = new BufferRing(4, 256);
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  try {
    ring.registerBufferRing(bufs, 7);
    assert.ok(ring.readMultishot(r1, 7, 1));
    const got: { tag: number; res: number; flags: number }[] = [];
    const collect = () => {
      ring.enter(1);
      ring.drain((tag, res, flags) => got.push({ tag, res, flags }));
    };
    collect(); // arms the read; nothing to read yet (times out after 50 ms)
    assert.equal(got.length, 0);

    const used: number[] = [];
    for (let i = 0; i < 4; i++) {
      const msg = Buffer.from(`packet ${i}`);
      assert.equal(sys.write(w1, msg, msg.length), msg.length);
      collect();
      const c = got.shift()!;
      assert.equal(c.tag, 1);
      assert.equal(c.res, msg.length);
      assert.ok(c.flags & IORING_CQE_F_BUFFER, 'a buffer was used');
      assert.ok(c.flags & IORING_CQE_F_MORE, 'the read stays armed');
      const bid = c.flags >>> IORING_CQE_BUFFER_SHIFT;
      assert.equal(bufs.data.toString('utf8', bid * 256, bid * 256 + c.res), `packet ${i}`);
      used.push(bid);
    }
    assert.deepEqual([...used].sort(), [0, 1, 2, 3], 'each buffer once');

    // all four buffers are out: the next read ends the multishot with -ENOBUFS
    assert.equal(sys.write(w1, Buffer.from('packet 4'), 8), 8);
    collect();
    const nob = got.shift()!;
    assert.equal(nob.res, -105);
    assert.equal(nob.flags & IORING_CQE_F_MORE, 0, 'the read is no longer armed');

    // write buffer used[2] ("packet 2") to the second pipe through the ring
    const b = used[2]!;
    assert.ok(ring.write(w2, bufs.lo[b]!, bufs.hi[b]!, 8, 0x20000 | b));
    collect();
    const wc = got.shift()!;
    assert.deepEqual([wc.tag, wc.res], [0x20000 | b, 8]);
    const out = Buffer.alloc(16);
    assert.equal(sys.read(r2, out, 16), 8);
    assert.equal(out.toString('utf8', 0, 8), 'packet 2');

    // give the buffers back, re-arm: the waiting data arrives
    for (const x of used) bufs.recycle(x);
    bufs.publish();
    assert.ok(ring.readMultishot(r1, 7, 1));
    collect();
    const again = got.shift()!;
    assert.equal(again.res, 8);
    const bid = again.flags >>> IORING_CQE_BUFFER_SHIFT;
    assert.equal(bufs.data.toString('utf8', bid * 256, bid * 256 + 8), 'packet 4');
  } finally {
    for (const fd of [r1, w1, r2, w2]) sys.close(fd);
    ring.close();
    bufs.close();
  }
});

test('buffer ring: sizes must be a power of two', () => {
  assert.throws(() => new BufferRing(3, 64), /power of two/);
});
