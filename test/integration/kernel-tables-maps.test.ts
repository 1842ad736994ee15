/**
 * The table publisher on real kernel maps, read by a real eBPF program: ulvs_ksvcs (hash,
 * BPF_F_NO_PREALLOC) and ulvs_ktab (array) declared as docs/kernel-setup.md has them, in a
 * throw-away object compiled here against bpf/ulvs_maps.h, whose program does step 2 of the
 * contract (look the service up, compute the index for sh, dh or seq, read the element) and
 * writes the chosen kdest's address and port into the packet. For thousands of random clients
 * (BPF_PROG_TEST_RUN, no network) the kernel's choice must be the user-space scheduler's, or
 * KDEST_USER exactly where the scheduler's first bucket fails. Also: openKernelTableMaps finds
 * the maps by name among the program's, and refuses a program without them (the committed fast
 * path, until it gains them).
 *
 * Control: sh-port is cleared in the scheduler's view only, so the kernel (still hashing the
 * port) must disagree for most clients; a wrong golden-ratio constant in the program's hash_32
 * (0x61C88649) fails the first test (tried when it was written).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Director } from '../../src/core/director.js';
import { defaultRegistry } from '../../src/sched/index.js';
import { SH_PORT } from '../../src/sched/sh.js';
import { KDEST_USER } from '../../src/sched/kernel-table.js';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { loadObject } from '../../src/datapath/tun/libbpf.js';
import { sys } from '../../src/datapath/tun/sys.js';
import { KernelTables, openKernelTableMaps } from '../../src/datapath/tun/kernel-tables.js';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { needsRoot } from '../support/root.js';

const BPF = fileURLToPath(new URL('../../../bpf/', import.meta.url));
const PROGRAM = `
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KSVC_MAX_DEFAULT);
	__type(key, struct ksvc_key);
	__type(value, struct ksvc_value);
} ulvs_ksvcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * KSVC_MAX_DEFAULT * KTAB_REGION);
	__type(key, __u32);
	__type(value, struct kdest);
} ulvs_ktab SEC(".maps");

static __always_inline __u32 hash_32(__u32 v, int bits) { return (v * 0x61C88647u) >> (32 - bits); }

/* returns the element's dir (KDEST_USER: 255) and writes its addr and port over daddr and dest;
 * negative: no service (-2), size 0 (-3), other sched (-4), index outside the map (-5) */
SEC("tc") int hkt_pick(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *th = (void *)(ip + 1);
	if ((void *)(th + 1) > end) return -1;
	struct ksvc_key k = { .addr = ip->daddr, .port = th->dest, .proto = ip->protocol };
	struct ksvc_value *v = bpf_map_lookup_elem(&ulvs_ksvcs, &k);
	if (!v) return -2;
	if (v->size == 0) return -3;
	__u32 ix;
	__u32 h = bpf_ntohl(ip->saddr) + ((v->flags & KSVC_PORT) ? bpf_ntohs(th->source) : 0);
	if (v->sched == KSCHED_SH) ix = hash_32(h, 8);
	else if (v->sched == KSCHED_DH) ix = hash_32(bpf_ntohl(ip->daddr), 8);
	else if (v->sched == KSCHED_SEQ) ix = bpf_ntohl(th->seq) % v->size; /* the cursor, from the test */
	else return -4;
	__u32 at = v->base + ix;
	struct kdest *d = bpf_map_lookup_elem(&ulvs_ktab, &at);
	if (!d) return -5;
	ip->daddr = d->addr;
	th->dest = d->port;
	return d->dir;
}
char LICENSE[] SEC("license") = "GPL";
`;

function compile(dir: string): string {
  writeFileSync(join(dir, 'hkt_pick.bpf.c'), PROGRAM);
  const out = join(dir, 'hkt_pick.bpf.o');
  execFileSync('clang', ['-O2', '-g', '-target', 'bpfel', '-mcpu=v3', '-Wall', `-I${BPF}`, `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, '-c', join(dir, 'hkt_pick.bpf.c'), '-o', out]);
  return out;
}

const VIP = '203.0.113.19';
const frame = (caddr: number, cport: number, vport: number, seq: number) => {
  const ip = ipv4({ src: `${caddr >>> 24}.${(caddr >>> 16) & 255}.${(caddr >>> 8) & 255}.${caddr & 255}`, dst: VIP }).tcp({ sport: cport, dport: vport, flags: 'S', seq }).build();
  const h = Buffer.alloc(14);
  h.writeUInt16BE(0x0800, 12);
  return Buffer.concat([h, ip]);
};

test('published tables, read by a kernel program, choose what the user-space schedulers choose', { skip: needsRoot }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hkt-maps-'));
  let loaded: ReturnType<typeof loadObject> | null = null;
  let fds: ReturnType<typeof openKernelTableMaps> | null = null;
  try {
    let obj: string;
    try {
      obj = compile(dir);
    } catch (e) {
      return t.skip(`clang cannot build the test program: ${(e as Error).message.split('\n')[0]}`);
    }
    loaded = loadObject(obj, 'hkt_pick', []);
    fds = openKernelTableMaps(loaded.progFd);
    assert.ok(!('missing' in fds), 'missing' in fds ? fds.missing : '');
    assert.equal(fds.ksvcMax, 64);

    const d = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
    const vip = parseIPv4(VIP);
    const services: [number, string, number, number[]][] = [[80, 'sh', 0, [1, 0, 3, 2]], [81, 'sh', SH_PORT, [2, 5]], [82, 'dh', 0, [1, 1, 0]], [83, 'wrr', 0, [4, 3, 2]], [84, 'rr', 0, [1, 0, 1]]];
    for (const [port, sched, flags, ws] of services) {
      d.addService({ proto: 6, addr: vip, port, scheduler: sched, schedFlags: flags });
      ws.forEach((w, i) => d.addDest({ proto: 6, addr: vip, port }, { addr: parseIPv4(`192.0.2.${20 + i}`), port: 8000 + i, weight: w }));
    }
    const pub = new KernelTables(fds.maps, fds.ksvcMax, () => performance.now());
    pub.sync(d.services, null, true);
    assert.equal(pub.counters()['ksetup_published'], 5, pub.lastError);

    let x = 0x2545f491;
    const rand = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
    const ctx = { proto: 6, caddr: 0, cport: 0, vaddr: vip, vport: 0, now: 0, dryRun: true };
    for (const [port, sched] of services) {
      const svc = d.getService({ proto: 6, addr: vip, port })!;
      let users = 0;
      const seq = sched === 'wrr' || sched === 'rr';
      const cycle = seq ? pub.published().get(`6/${vip >>> 0}/${port}`)!.size : 0;
      const fresh = seq ? (svc.sched!.setCursor!(svc, { server: null, weight: 0 }), svc.sched!) : null;
      for (let i = 0; i < (seq ? cycle * 3 : 3000); i++) {
        ctx.caddr = rand() | 0;
        ctx.cport = 1024 + (rand() % 60000);
        ctx.vport = port;
        const r = testRun(loaded.progFd, frame(ctx.caddr >>> 0, ctx.cport, port, i));
        if (seq) {
          // per-CPU cursor i: the sequence IPVS's single cursor gives from its start
          const want = fresh!.pick(svc, { ...ctx, dryRun: false })!;
          assert.equal(r.out.readUInt32BE(14 + 16), want.addr >>> 0, `${sched} pick ${i}`);
          continue;
        }
        const want = svc.sched!.pick(svc, ctx);
        if (r.retval === KDEST_USER) {
          users++;
          assert.equal(want, null, `${sched}: USER only where the scheduler has no server`);
        } else {
          assert.equal(r.retval, 0, 'NAT');
          assert.ok(want, `${sched}: the kernel chose where the scheduler has none`);
          assert.equal(r.out.readUInt32BE(14 + 16), want.addr >>> 0, `${sched} client ${i}`);
          assert.equal(r.out.readUInt16BE(14 + 20 + 2), want.port);
        }
      }
      if (svc.dests.some((x) => x.weight === 0) && !seq) assert.ok(users > 0, `${sched}: a weight-0 server's clients go to ulvsd`);
    }

    // control: the program's view of sh-port differs from the scheduler's -> most choices differ
    const s81 = d.getService({ proto: 6, addr: vip, port: 81 })!;
    s81.flags &= ~SH_PORT; // the scheduler now hashes without the port; the kernel still with it
    let differ = 0;
    for (let i = 0; i < 500; i++) {
      ctx.caddr = rand() | 0;
      ctx.cport = 1024 + (rand() % 60000);
      ctx.vport = 81;
      const r = testRun(loaded.progFd, frame(ctx.caddr >>> 0, ctx.cport, 81, 0));
      if (r.out.readUInt32BE(14 + 16) !== s81.sched!.pick(s81, ctx)!.addr >>> 0) differ++;
    }
    assert.ok(differ > 100, `control: ${differ} of 500 differ`);
  } finally {
    if (fds && !('missing' in fds)) fds.close();
    if (loaded) sys.close(loaded.progFd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openKernelTableMaps: the committed fast path without the maps is reported, nothing left open', { skip: needsRoot }, () => {
  const l = loadObject('fastpath.bpf.o', 'ulvs_fastpath', []);
  try {
    const r = openKernelTableMaps(l.progFd);
    if ('missing' in r) assert.match(r.missing, /no ulvs_ksvcs\/ulvs_ktab maps/);
    else r.close(); // the fast path has them (hkprog): found
  } finally {
    sys.close(l.progFd);
  }
});
