/**
 * A data-path worker's answers to the trace calls (worker-protocol.ts Calls: traceStart,
 * traceRead, traceStop) over its PacketTrace (core/trace/packet-trace.ts), and the harvest's
 * sink while a trace is on: the engine gets every offloaded connection's activity as always,
 * and the trace a Kernel record for the connections it follows (the kernel fast path forwards
 * them without the engine seeing each packet; this is what its slot counters say).
 */
import type { Director } from '../../core/director.js';
import type { OffloadReport } from '../../core/offload.js';
import type { PacketTrace } from '../../core/trace/packet-trace.js';
import type { CallHandlers } from './worker-protocol.js';

type TraceCallNames = 'traceStart' | 'traceRead' | 'traceStop';

export function traceCalls(trace: PacketTrace): Pick<CallHandlers, TraceCallNames> {
  return {
    traceStart: ([filter, budget]) => (trace.start(filter, budget), null),
    traceRead: () => {
      const r = trace.drain();
      return { ...r, on: trace.on, origin: performance.timeOrigin }; // the records' clock: this thread's performance.now()
    },
    traceStop: () => (trace.stop(), null),
  };
}

/** The harvest's sink while tracing: `now()` is the harvest's clock (ms). */
export function tracingSink(engine: () => Director, trace: PacketTrace, now: () => number): { offloadActivity(c: number, r: OffloadReport): void } {
  return {
    offloadActivity(c, r) {
      const d = engine();
      if (trace.follows(d, c)) trace.kernel(d, c, r, now()); // before: the engine's activity may end the entry
      d.offloadActivity(c, r);
    },
  };
}
