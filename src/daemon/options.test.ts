/** ulvsd's command line without a process: defaults, every refusal with its message, exit status 2. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOptions, UsageError, USAGE } from './options.js';

const parse = (...argv: string[]) => {
  const r = parseOptions(argv, 3);
  assert.ok(!r.help && !r.version);
  return (r as Extract<typeof r, { version: false }>).options;
};
const refused = (argv: string[], msg: RegExp) =>
  assert.throws(
    () => parseOptions(argv, 3),
    (e: unknown) => e instanceof UsageError && e.code === 2 && msg.test(e.message),
    `${argv.join(' ')} refused with ${msg}`,
  );

test('defaults', () => {
  assert.deepEqual(parse('--rules', '/etc/ulvs.rules'), {
    source: { kind: 'rules', file: '/etc/ulvs.rules' },
    configId: 'ulvs',
    configTest: false,
    socket: '/run/ulvs/ulvs.sock',
    dev: 'ulvs0',
    table: 4200,
    pref: 4200,
    maxConns: 1 << 20,
    workers: 3,
    metrics: null,
    logFormat: 'auto',
    offload: true,
    io: 'auto',
    busyPollUs: 0,
    capture: 'tc',
    fastPath: 'tc',
    fastPathAfter: 8,
    fastPathConns: 65536,
    fastPathFlows: 0,
    kernelSetupAliveMs: 250,
    fastPathFib: 'auto',
    stateDir: '/run/ulvs',
    keepState: false,
    saveOnStop: null,
    sysctl: {},
  });
});

test('no --rules and no --keepalived: an empty start (as loading ip_vs), not a refusal', () => {
  assert.deepEqual(parse().source, { kind: 'none' });
  assert.deepEqual(parse('--workers', '1').source, { kind: 'none' });
  refused(['--rules', ''], /^--rules wants a file name/);
  refused(['--save-on-stop', ''], /^--save-on-stop wants a file name/);
});

test('--version', () => {
  assert.deepEqual(parseOptions(['--version'], 1), { help: false, version: true });
});

test('--sysctl NAME=VALUE, repeatable, the kernel\'s checks, the last of one name wins', () => {
  const o = parse('--rules', 'r', '--sysctl', 'sync_refresh_period=10', '--sysctl', 'net.ipv4.vs.sync_threshold=3 0', '--sysctl', 'sync_retries=1', '--sysctl', 'sync_retries=2');
  assert.deepEqual(o.sysctl, { syncRefreshPeriod: 10, syncThreshold: 3, syncPeriod: 0, syncRetries: 2 });
  refused(['--rules', 'r', '--sysctl', 'sync_retries=4'], /^--sysctl: sysctl sync_retries: is 0\.\.3, not 4$/);
  refused(['--rules', 'r', '--sysctl', 'sync_threshold=50 50'], /--sysctl: sysctl sync_threshold: the threshold is below the period/);
  refused(['--rules', 'r', '--kernel-setup-alive-ms', 'x'], /^--kernel-setup-alive-ms is 0\.\.3600000 ms/);
  refused(['--rules', 'r', '--fast-path-fib', 'direct'], /^--fast-path-fib is auto or rules/);
  refused(['--rules', 'r', '--kernel-setup-alive-ms', '3600001'], /^--kernel-setup-alive-ms is 0\.\.3600000 ms/);
  refused(['--rules', 'r', '--sysctl', 'cache_bypass=1'], /--sysctl: unknown sysctl "cache_bypass"/);
  refused(['--rules', 'r', '--sysctl', 'sync_version'], /--sysctl: sysctl wants name=value/);
});

test('every option read', () => {
  const o = parse(
    ...['--keepalived', 'k.conf', '--config-id', 'lb1', '-t', '--socket', '/tmp/s', '--dev', 'lb0', '--table', '7', '--pref', '99', '--max-conns', '1000', '--workers', '2'],
    ...['--metrics', '[::1]:9640', '--log-format', 'text', '--no-offload', '--io', 'syscalls', '--busy-poll', '50', '--capture', 'rules'],
    ...['--fast-path', 'off', '--fast-path-after', '3', '--fast-path-conns', '100', '--fast-path-flows', '64', '--kernel-setup-alive-ms', '1000', '--fast-path-fib', 'rules', '--state-dir', '/tmp/st', '--keep-state', '--sysctl', 'sync_version=0', '--save-on-stop', '/var/lib/ulvs/rules'],
  );
  assert.deepEqual(o, {
    source: { kind: 'keepalived', file: 'k.conf' },
    configId: 'lb1',
    configTest: true,
    socket: '/tmp/s',
    dev: 'lb0',
    table: 7,
    pref: 99,
    maxConns: 1000,
    workers: 2,
    metrics: { host: '::1', port: 9640, text: '[::1]:9640', public: false },
    logFormat: 'text',
    offload: false,
    io: 'syscalls',
    busyPollUs: 50,
    capture: 'rules',
    fastPath: 'off',
    fastPathAfter: 3,
    fastPathConns: 100,
    fastPathFlows: 64,
    kernelSetupAliveMs: 1000,
    fastPathFib: 'rules',
    stateDir: '/tmp/st',
    keepState: true,
    saveOnStop: '/var/lib/ulvs/rules',
    sysctl: { syncVersion: 0 },
  });
  assert.deepEqual(parse('--rules', 'r', '--metrics', 'localhost:1').metrics, { host: 'localhost', port: 1, text: 'localhost:1', public: false });
  assert.deepEqual(parse('--rules', 'r', '--metrics', '127.0.0.2:1').metrics?.public, false);
  assert.deepEqual(parse('--rules', 'r', '--metrics', '0.0.0.0:9640', '--metrics-public').metrics, { host: '0.0.0.0', port: 9640, text: '0.0.0.0:9640', public: true });
  assert.deepEqual(parse('--rules', 'r', '--metrics', '[2001:db8::1]:9640', '--metrics-public').metrics?.public, true);
});

test('--help, -h', () => {
  assert.deepEqual(parseOptions(['--help'], 1), { help: true });
  assert.deepEqual(parseOptions(['-h'], 1), { help: true });
});

test('unknown options and missing values: the first line of the reason, then the usage', () => {
  for (const argv of [['--bogus'], ['--rules'], ['--rules', 'r', '--workers'], ['stray'], ['--rules', 'r', '--busy-poll', '-5']]) {
    assert.throws(
      () => parseOptions(argv, 1),
      (e: unknown) => e instanceof UsageError && e.code === 2 && e.message.endsWith(`\n${USAGE}`) && e.message.split('\n').length === 2,
      argv.join(' '),
    );
  }
});

test('bad values, each with its range', () => {
  refused(['--rules', 'r', '--keepalived', 'k'], /^give at most one of --rules FILE \(ipvsadm -S format\) and --keepalived FILE \(keepalived\.conf\); with neither, ulvsd starts with an empty table$/);
  const cases: [string[], RegExp][] = [
    [['--log-format', 'xml'], /^--log-format is auto, json, text or journal$/],
    [['--workers', '0'], /^--workers must be 1\.\.64$/],
    [['--workers', '65'], /^--workers must be 1\.\.64$/],
    [['--workers', '1.5'], /^--workers must be 1\.\.64$/],
    [['--workers', ''], /^--workers must be 1\.\.64$/],
    [['--io', 'epoll'], /^--io is auto, uring or syscalls$/],
    [['--capture', 'nft'], /^--capture is tc or rules$/],
    [['--fast-path', 'xdp'], /^--fast-path is tc or off$/],
    [['--fast-path-after', '0'], /^--fast-path-after is 1\.\.255 packets$/],
    [['--fast-path-after', '2.5'], /^--fast-path-after is 1\.\.255 packets$/],
    [['--fast-path-conns', '1e9'], /^--fast-path-conns is 1\.\.16777216$/],
    [['--busy-poll=-5'], /^--busy-poll is 0\.\.1000000 microseconds$/],
    [['--metrics', '9640'], /^--metrics wants HOST:PORT, e\.g\. 127\.0\.0\.1:9640, not "9640"$/],
    [['--metrics', '127.0.0.1:70000'], /^--metrics wants HOST:PORT/],
    [['--table', 'main'], /^--table is a routing table number/],
    [['--pref', '0'], /^--pref is a rule preference/],
    [['--table', '254'], /^--table 254 is the kernel's main table: ulvsd flushes its table at stop/],
    [['--table', '255'], /^--table 255 is the kernel's local table/],
    [['--table', '253'], /^--table 253 is the kernel's default table/],
    [['--pref', '32765'], /^--pref 32765: ulvsd uses 32765 and 32766 and deletes its rules there at stop/],
    [['--pref', '32767'], /^--pref 32767:/],
    [['--metrics', '0.0.0.0:9640'], /^--metrics 0\.0\.0\.0:9640 is not a loopback address: every host that reaches it would read the metrics; add --metrics-public/],
    [['--metrics', '198.51.100.1:9640'], /is not a loopback address/],
    [['--metrics', '[2001:db8::1]:9640'], /is not a loopback address/],
    [['--metrics-public'], /^--metrics-public goes with --metrics HOST:PORT$/],
    [['--dev', 'a/b'], /^--dev is an interface name/],
    [['--dev', '..'], /^--dev is an interface name/],
    [['--dev', 'x'.repeat(16)], /^--dev is an interface name/],
    [['--dev', 'a b'], /^--dev is an interface name/],
    [['--dev', 'a;id'], /^--dev is an interface name of 1\.\.15 letters, digits, "_" or "-"$/],
    [['--dev', 'tun.1'], /^--dev is an interface name/],
    [['--max-conns', '2', '--workers', '4'], /^--max-conns is 4\.\.2147483647 \(at least one per worker\)$/],
  ];
  for (const [argv, msg] of cases) refused(['--rules', 'r', ...argv], msg);
  refused(['--rules', 'r', '--config-id', 'lb1'], /^--config-id applies to --keepalived FILE only/);
  refused(['--keepalived', 'k', '--config-id', ''], /^--config-id is one word without blanks/);
  refused(['--keepalived', 'k', '--config-id', 'a b'], /^--config-id is one word without blanks/);
});

test('the first refusal in the order ulvsd always checked is the one reported', () => {
  refused(['--rules', 'r', '--workers', '0', '--io', 'x', '--fast-path', 'x'], /^--workers/);
  refused(['--rules', 'r', '--io', 'x', '--fast-path', 'x'], /^--io/);
  refused(['--log-format', 'x', '--workers', '0'], /^--log-format/);
});
