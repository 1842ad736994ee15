/**
 * ulvsadm's help text (-h) and version line: ipvsadm 1.31's commands and options, saying which
 * ones ulvs does not implement.
 */
export const PROG = 'ulvsadm';
export const VERSION = 'ulvsadm 0.1.0 (ipvsadm v1.31 command line; IPVS v1.2.1 behaviour)';

export function usage(): string {
  return `${VERSION}
Usage:
  ${PROG} -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  ${PROG} -D -t|u service-address
  ${PROG} -C
  ${PROG} -R
  ${PROG} -S [-n]
  ${PROG} -a|e -t|u service-address -r server-address [-g|-i|-m] [-w weight] [-x upper] [-y lower]
  ${PROG} -d -t|u service-address -r server-address
  ${PROG} -L|l [-t|u service-address] [options]
  ${PROG} -Z [-t|u service-address]
  ${PROG} --set tcp tcpfin udp
  ${PROG} -h

Commands (long or short forms):
  --add-service     -A   add a virtual service
  --edit-service    -E   replace a virtual service's settings (unset ones return to defaults)
  --delete-service  -D   delete a virtual service and its real servers
  --clear           -C   delete every virtual service
  --restore         -R   read commands from standard input, one per line
  --save            -S   print the rules in this format, to be read back by -R
  --add-server      -a   add a real server to a virtual service
  --edit-server     -e   replace a real server's settings
  --delete-server   -d   delete a real server
  --list            -L|-l  list services and real servers
  --zero            -Z   zero the counters of one service or of all
  --set tcp tcpfin udp   set the connection timeouts in seconds (0 keeps a value)
  --help            -h   this text

Options:
  --tcp-service  -t service-address   host[:port], numeric IPv4 address
  --udp-service  -u service-address   host[:port]
  --scheduler    -s scheduler         rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos (default wlc)
  --persistent   -p [timeout]         persistent service, timeout in seconds (default 360)
  --netmask      -M netmask           persistence granularity
  --sched-flags  -b flags             sh-fallback, sh-port, mh-fallback, mh-port, flag-1..3,
                                      ulvs-exact (ulvs: keep the user-space path)
  --ops          -o                   one-packet scheduling (UDP)
  --real-server  -r server-address    host[:port]; the service port when none is given
  --masquerading -m                   VS/NAT, the method ulvs implements
  --gatewaying   -g                   direct routing (ipvsadm's default); ulvsd's data path does not
                                      carry it yet and refuses such servers
  --ipip         -i                   tunnelling; likewise refused by ulvsd's data path for now
  --tun-type     type                 ipip|gue|gre (default ipip), with -i
  --tun-port     port                 the gue tunnel's UDP port
  --tun-nocsum, --tun-csum, --tun-remcsum   tunnel checksum mode (gue; gre: the first two)
  --weight       -w weight            0..65535; 0 quiesces the server (default 1)
  --u-threshold  -x n                 upper connection threshold
  --l-threshold  -y n                 lower connection threshold
  --numeric      -n                   numbers instead of names
  --connection   -c                   list the connection table
  --timeout                           list the timeouts
  --stats                             list counters
  --rate                              list rates
  --thresholds                        list thresholds
  --persistent-conn                   list persistence templates per server
  --exact        -X                   exact numbers with --stats and --rate
  --nosort                            do not sort the listing
  --proc ip_vs|ip_vs_stats|ip_vs_conn  (ulvs) print the kernel's /proc/net/ip_vs* text
The daemon is reached at $ULVS_SOCKET (default /run/ulvs/ulvs.sock).
`;
}
