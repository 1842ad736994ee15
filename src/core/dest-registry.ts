/**
 * Real servers by id (and id 0, the stand-in for synced entries without a server here), and the trash (ipvs-spec §1.3, ip_vs_ctl.c's dest trash).
 *
 * The connection table stores a server as a 16-bit id (1..65535; 0 = none), so every entry
 * can find its server in O(1) without holding a reference. A server deleted while connections
 * or templates still point to it stays here, unavailable, in the trash: it keeps its id and
 * counters until the last reference goes (then the id is freed), and re-adding the same server
 * to the same service revives it (ip_vs_trash_get_dest).
 */
import { RealServer, VirtualService } from './service.js';

export const MAX_DEST_ID = 65535;
/** Id 0: the stand-in server of entries a sync message created for a real server this director
 *  does not have (ip_vs_proc_conn keeps them "unbound but still handled": their packets still go
 *  to the entry's own daddr:dport). It belongs to no service, is always available, never takes a
 *  new connection or a template's clients (Persistence.usable), and counts those entries. */
export const UNBOUND_DEST_ID = 0;

export class DestRegistry {
  readonly #byId: (RealServer | null)[] = new Array<RealServer | null>(MAX_DEST_ID + 1).fill(null);
  readonly #freeIds: number[] = [];
  #trash: RealServer[] = [];

  /** the server of unbound synced entries (UNBOUND_DEST_ID) */
  readonly unbound = new RealServer(UNBOUND_DEST_ID, new VirtualService(0, 0, 0, 'none'), 0, 0);

  constructor() {
    for (let id = MAX_DEST_ID; id >= 1; id--) this.#freeIds.push(id);
    this.#byId[UNBOUND_DEST_ID] = this.unbound;
  }

  /** The server with this id; the caller holds a live connection or template naming it. */
  byId(id: number): RealServer {
    return this.#byId[id]!;
  }

  /** byId for an id that may have been freed (a template's server): null when gone. */
  maybeById(id: number): RealServer | null {
    return this.#byId[id] ?? null;
  }

  /** A free id, or undefined when all 65535 are taken. */
  takeId(): number | undefined {
    return this.#freeIds.pop();
  }

  register(d: RealServer): void {
    this.#byId[d.id] = d;
  }

  /** Deleted servers still referenced by connections. */
  get trash(): readonly RealServer[] {
    return this.#trash;
  }

  /** Take a deleted server of `svc` back out of the trash, or null. */
  revive(svc: VirtualService, addr: number, port: number): RealServer | null {
    const i = this.#trash.findIndex((d) => d.addr === addr && d.port === port && d.svc.proto === svc.proto && d.svc.addr === svc.addr && d.svc.port === svc.port);
    if (i < 0) return null;
    const d = this.#trash[i]!;
    this.#trash = this.#trash.filter((_, j) => j !== i);
    d.svc = svc;
    d.available = true;
    return d;
  }

  /** A server leaves its service: free it now, or keep it in the trash while referenced. */
  retire(d: RealServer): void {
    d.available = false;
    if (d.refs === 0) this.release(d);
    else this.#trash = [...this.#trash, d];
  }

  /** Forget a server that nothing references any more and free its id. */
  release(d: RealServer): void {
    this.#trash = this.#trash.filter((x) => x !== d);
    if (this.#byId[d.id] === d) {
      this.#byId[d.id] = null;
      this.#freeIds.push(d.id);
    }
  }
}
