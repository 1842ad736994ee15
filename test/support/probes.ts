/**
 * Small network probes run inside a namespace of the test bed (root): a TCP connect that tells
 * a reset from silence, an ICMP echo, a stray TCP ACK that reports what comes back. The raw
 * ones are Python (Node has no raw sockets); each prints one word and never hangs (timeouts).
 */
import { spawnSync } from 'node:child_process';

const PY_CSUM = `
import socket,struct,sys,time,os
def csum(b):
  if len(b)%2: b+=b'\\0'
  s=sum(struct.unpack('!%dH'%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return ~s&0xffff
`;

const PY_PING = `${PY_CSUM}
dst=sys.argv[1]; ident=os.getpid()&0xffff
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); s.settimeout(0.2)
p=struct.pack('!BBHHH',8,0,0,ident,1)+b'ulvs-ping'; p=p[:2]+struct.pack('!H',csum(p))+p[4:]
s.sendto(p,(dst,0)); end=time.time()+2
while time.time()<end:
  try: d,a=s.recvfrom(200)
  except socket.timeout: continue
  h=(d[0]&15)*4
  if a[0]==dst and d[h]==0 and struct.unpack('!H',d[h+4:h+6])[0]==ident: print('reply'); sys.exit(0)
print('none')
`;

const PY_STRAY = `${PY_CSUM}
src,dst,dport=sys.argv[1],sys.argv[2],int(sys.argv[3]); sport=40000+os.getpid()%20000
t=struct.pack('!HHIIBBHHH',sport,dport,12345,67890,5<<4,0x10,64240,0,0)
ph=socket.inet_aton(src)+socket.inet_aton(dst)+struct.pack('!BBH',0,6,len(t))
t=t[:16]+struct.pack('!H',csum(ph+t))+t[18:]
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_TCP); s.settimeout(0.2)
s.sendto(t,(dst,0)); end=time.time()+2
while time.time()<end:
  try: d,a=s.recvfrom(200)
  except socket.timeout: continue
  h=(d[0]&15)*4; sp,dp=struct.unpack('!HH',d[h:h+4])
  if a[0]==dst and sp==dport and dp==sport: print('rst' if d[h+13]&4 else 'other'); sys.exit(0)
print('none')
`;

const JS_CONNECT = `
const [host, port, ms] = process.argv.slice(1);
const s = require('net').connect(Number(port), host);
let data = '';
const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(ms));
s.on('data', (d) => (data += d));
s.on('connect', () => s.write('hello\\n'));
s.on('end', () => { clearTimeout(t); console.log('connected ' + data.trim()); process.exit(0); });
s.on('error', (e) => { clearTimeout(t); console.log(e.code === 'ECONNREFUSED' ? 'refused' : e.code); process.exit(0); });
`;

function inNs(ns: string, argv: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: 15_000 });
  if (r.status !== 0) throw new Error(`${argv[0]} in ${ns} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

/** 'reply' when `dst` answers an ICMP echo within 2 s, else 'none'. */
export const ping = (ns: string, dst: string) => inNs(ns, ['/usr/bin/python3', '-c', PY_PING, dst]);

/** A TCP ACK from src to dst:port that belongs to no connection: 'rst', 'other' or 'none' (2 s). */
export const strayAck = (ns: string, src: string, dst: string, port: number) => inNs(ns, ['/usr/bin/python3', '-c', PY_STRAY, src, dst, String(port)]);

/** Connect, send a line, read until the peer closes: 'connected <data>', 'refused', 'timeout' or an error code. */
export const tcpConnect = (ns: string, host: string, port: number, ms = 2000) => inNs(ns, [process.execPath, '-e', JS_CONNECT, host, String(port), String(ms)]);

/** A TCP server on host:port in `ns` that answers every connection with `reply` and closes (a Node process; kill it). */
export const LISTENER = (host: string, port: number, reply: string) => `require('net').createServer((s) => { s.on('error', () => {}); s.end('${reply}\\n'); }).listen(${port}, '${host}', () => console.log('listening'));`;
