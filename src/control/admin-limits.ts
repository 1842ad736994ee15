/**
 * What one admin API server (admin.ts) accepts, and the counters of what it refused. Every
 * limit is in README "Admin API limits"; admin-limits.test.ts holds each one and its error.
 *
 *   maxBody           bytes of one request body                          413 body_too_large
 *   maxHeaderBytes    bytes of one request's header section              431 headers_too_large
 *   maxInFlight       requests being handled at once (a listing waits for
 *                     every worker; a change waits for the serial section) 503 too_busy
 *   maxConnections    open connections (a client's keep-alive ones count) closed at accept:
 *                     no request has been read yet, so no HTTP answer   (counted: connections_refused)
 *   headersTimeoutMs  from a request's first byte to its last header    408 timed_out
 *   requestTimeoutMs  a whole request (headers and body)                 408 timed_out
 *   a request that is not HTTP                                           400 bad_request
 *   a rules change needing more scheduler-state slots than there are
 *   (control/sched-slots.ts; nothing changed)                            507 ENOSPC (counted: no_space)
 *
 * No rate limit: the socket is root's alone (0600, api-servers.ts), changes are applied one at
 * a time (the control plane's serial section) and these bounds cap what waits for it.
 */
import type { RequestListener, Server, ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';

export interface AdminLimits {
  maxBody: number;
  maxHeaderBytes: number;
  maxInFlight: number;
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

export const ADMIN_LIMITS: Readonly<AdminLimits> = {
  maxBody: 1 << 20,
  maxHeaderBytes: 16 << 10,
  maxInFlight: 256,
  maxConnections: 256,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
};

/** Requests and connections refused, by cause (GET /v1/counters `admin`). */
export interface AdminCounters {
  body_too_large: number;
  headers_too_large: number;
  too_busy: number;
  connections_refused: number;
  timed_out: number;
  bad_request: number;
  /** rules changes refused with ENOSPC: more scheduler-state slots (or other fixed room) needed than there is */
  no_space: number;
}

export const newAdminCounters = (): AdminCounters => ({ body_too_large: 0, headers_too_large: 0, too_busy: 0, connections_refused: 0, timed_out: 0, bad_request: 0, no_space: 0 });

/** The node:http options that carry the limits. */
export function serverOptions(l: AdminLimits): ServerOptions {
  return {
    maxHeaderSize: l.maxHeaderBytes,
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    // how often node checks the two timeouts (its default, 30 s, would let a slow request live
    // up to 30 s past its limit)
    connectionsCheckingInterval: Math.max(100, Math.min(l.headersTimeoutMs, l.requestTimeoutMs) / 4),
  };
}

/** An error answer written on the raw socket (the request could not be parsed into one). */
function rawError(socket: Duplex, status: number, reason: string, code: string, message: string): void {
  const body = `${JSON.stringify({ error: { code, message } })}\n`;
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  socket.destroy();
}

/** Enforce the connection count and answer node's parse errors and timeouts with a clear
 *  error, each counted. */
export function guardServer(server: Server, l: AdminLimits, c: AdminCounters): void {
  server.maxConnections = l.maxConnections;
  server.on('drop', () => c.connections_refused++);
  server.on('clientError', (e: Error & { code?: string }, socket: Duplex) => {
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return void socket.destroy(); // the client left
    if (e.code === 'HPE_HEADER_OVERFLOW') {
      c.headers_too_large++;
      return rawError(socket, 431, 'Request Header Fields Too Large', 'headers_too_large', `request header section over ${l.maxHeaderBytes} bytes`);
    }
    if (e.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      c.timed_out++;
      return rawError(socket, 408, 'Request Timeout', 'timed_out', `request not complete within ${l.headersTimeoutMs / 1000} s (headers) or ${l.requestTimeoutMs / 1000} s (whole)`);
    }
    c.bad_request++;
    rawError(socket, 400, 'Bad Request', 'bad_request', `not an HTTP request: ${e.code ?? e.message}`);
  });
}

/** `handler` behind the in-flight bound (503 too_busy over it); counts the 413s it sends. */
export function limitRequests(l: AdminLimits, c: AdminCounters, handler: RequestListener): RequestListener {
  let inFlight = 0;
  return (req, res) => {
    if (inFlight >= l.maxInFlight) {
      c.too_busy++;
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
      res.end(`${JSON.stringify({ error: { code: 'too_busy', message: `${inFlight} requests already being handled (at most ${l.maxInFlight} at once): try again when they are done` } })}\n`);
      return;
    }
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (res.statusCode === 413) c.body_too_large++;
    });
    handler(req, res);
  };
}
