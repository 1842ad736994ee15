/**
 * ipvsadm command lines that must be refused, with ipvsadm's message and exit status
 * (ipvs-spec §6.1-6.4). Used by the parser's unit test and, through ulvsadm, against a real
 * daemon. Test-only.
 */
export const INVALID_COMMAND_LINES: [string, string, number][] = [
  ['-n -L', '', 255],
  ['-t 1.2.3.4:80', '', 255],
  ['-A', "You need to supply the 'service-address' option for the 'add-service' command", 2],
  ['-A -t 1.2.3.4:80 -r 5.6.7.8', "Illegal 'real-server' option with the 'add-service' command", 2],
  ['-A -t 1.2.3.4:80 -w 3', "Illegal 'weight' option with the 'add-service' command", 2],
  ['-A -t 1.2.3.4:0', 'Zero port specified for non-persistent service', 2],
  ['-A -t 1.2.3.4:80 -s rr -s wlc', "multiple 'scheduler' options specified", 2],
  ['-A -t 1.2.3.4:80 -u 1.2.3.4:53', "multiple 'service-address' options specified", 2],
  ['-A -t 1.2.3.4:80 -D', 'invalid option `-D\'', 2],
  ['-A -t 1.2.3.4:80 -o', 'One-Packet Scheduling is only for UDP virtual services', 2],
  ['-A -t 1.2.3.4:80 -b nosuch', "invalid scheduler flag `nosuch'", 2],
  ['-A -t 1.2.3.4:80 -b toString', "invalid scheduler flag `toString'", 2], // not an Object.prototype name
  ['-A -t 1.2.3.4:80 -b sh-port', "incompatible scheduler flag `sh-port'", 2],
  ['-A -t 1.2.3.4:80 -s rr -b mh-fallback', "incompatible scheduler flag `mh-fallback'", 2],
  ['-A -t 1.2.3.4:80 -p 0', 'illegal timeout value specified', 2],
  ['-A -t 1.2.3.4:80 -p 2678401', 'illegal timeout value specified', 2],
  ['-A -t 1.2.3.4:80 -M 255.255.255', 'illegal virtual server persistent mask specified', 2],
  ['-A -t 1234:80', 'illegal virtual server address[:port] specified', 2],
  ['-A -t 1.2.3.4:99999', 'illegal virtual server address[:port] specified', 2],
  ['-A -t 1.2.3.4:toString', 'illegal virtual server address[:port] specified', 2], // not an Object.prototype name
  ['-A -t 1.2.3.4:nosuchservice', 'illegal virtual server address[:port] specified', 2],
  ['-A -t 1.2.3.256:80', 'illegal virtual server address[:port] specified', 2],
  ['-A -f 0', "invalid fwmark value `0' specified", 2],
  ['-a -t 1.2.3.4:80', "You need to supply the 'real-server' option for the 'add-server' command", 2],
  ['-a -t 1.2.3.4:80 -r 5.6.7.8 -w 65536', 'illegal weight specified', 2],
  ['-a -t 1.2.3.4:80 -r 5.6.7.8 -w -1', 'illegal weight specified', 2], // popt hands the next word to -w
  ['-a -t 1.2.3.4:80 -r 5.6.7.8 -x abc', 'illegal u_threshold specified', 2],
  ['-a -t 1.2.3.4:80 -r 5.6.7.8 -y 2147483648', 'illegal l_threshold specified', 2],
  ['-a -t 1.2.3.4:80 -r 5.6.7.8 -s rr', "Illegal 'scheduler' option with the 'add-server' command", 2],
  ['-a -t 1.2.3.4:80 -r 5.6.7.8:70000', 'illegal real server address[:port] specified', 2],
  ['-d -t 1.2.3.4:80 -r 5.6.7.8 -w 2', "Illegal 'weight' option with the 'delete-server' command", 2],
  ['-D -t 1.2.3.4:80 -s rr', "Illegal 'scheduler' option with the 'delete-service' command", 2],
  ['-C -n', "Illegal 'numeric' option with the 'flush' command", 2],
  ['-L -s rr', "Illegal 'scheduler' option with the 'list' command", 2],
  ['-L -c --stats', 'options conflicts in the list command', 2],
  ['-L --timeout --rate', 'options conflicts in the list command', 2],
  ['-L --daemon --persistent-conn', 'options conflicts in the list command', 2],
  ['-L -c -t 1.2.3.4:80', "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2],
  ['-L -c --timeout', "The option 'timeout' conflicts with the 'connection' option in the 'list' command", 2],
  ['-L -n -n', "multiple 'numeric' options specified", 2],
  ['-L extra', 'unexpected argument extra', 2],
  ['-S -c', "Illegal 'connection' option with the 'save' command", 2],
  ['-Z -r 1.2.3.4', "Illegal 'real-server' option with the 'zero' command", 2],
  ['--set 1 2', '--set option requires 3 timeout values', 2],
  ['--set 1 2 x', 'illegal timeout value specified', 2],
  ['--set 1 2 3 -n', "Illegal 'numeric' option with the 'set' command", 2],
  ['--start-daemon primary', 'illegal start-daemon parameter specified', 2],
  ['-L --nosuch', '--nosuch: unknown option', 255],
  ['-A -t', '-t: missing argument', 255],
  ['-R -n', "Illegal 'numeric' option with the 'restore' command", 2],
];

