/**
 * Where the packet path tells a running sync master about connections (the kernel's calls to
 * ip_vs_sync_conn from ip_vs_in and ip_vs_conn_expire). EngineState.sync holds one while a
 * master runs and null otherwise, so an engine without one pays a null test per packet.
 */
export interface SyncHook {
  /** an inbound packet (client -> VIP) of entry c was just forwarded (after its state moved) */
  inbound(c: number): void;
  /** the kernel fast path forwarded n > 0 inbound packets of entry c since the last report */
  inboundBulk(c: number, n: number): void;
  /** entry c (a template still controlling entries) was kept past its timeout for 60 s more */
  keptAlive(c: number): void;
}
