/**
 * A small HTTP client for ulvsd's admin API on its Unix socket (what `curl --unix-socket`
 * does), used by ulvsadm, the benchmark and the tests. `json` is the parsed body, or null when
 * the body is not JSON; `text` is the body as received. Rejects only when the socket cannot be
 * reached (the error of net.connect).
 *
 * One connection per request (no keep-alive agent): a pooled connection that sat idle for the
 * server's keep-alive timeout (Node's 5 s) can be closed by the server just as the next request
 * is written on it, which fails that request with ECONNRESET (seen from a test making 200 edits
 * and then reading, test/integration/reload-under-load.test.ts). A Unix socket connection costs
 * next to nothing.
 */
import { request } from 'node:http';

export interface AdminReply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- shape depends on the endpoint
  json: any;
  text: string;
}

/** One request; an object body is sent as JSON, a string as is. */
export function callAdmin(socketPath: string, method: string, path: string, body?: string | object, headers: Record<string, string> = {}): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({ socketPath, method, path, agent: false, headers: { ...(data !== undefined ? { 'content-length': String(Buffer.byteLength(data)) } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: jsonOrNull(text), text }));
    });
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** The body as JSON, or null for a text (or streamed, or empty) body. */
function jsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** A GET whose body is handed to `onData` as it arrives (the live trace); resolves with the
 *  status and, for a status other than 200, the whole body (the error). */
export function streamAdmin(socketPath: string, path: string, onData: (chunk: string) => void): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'GET', path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (res.statusCode === 200 ? onData(c) : (text += c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: jsonOrNull(text), text }));
    });
    req.on('error', reject);
    req.end();
  });
}
