/**
 * The keepalived.conf of an HA pair of ulvs directors (README "HA pair"), as a template: one
 * file per director, read by both `keepalived -P -f FILE` (VRRP) and `ulvsd --keepalived FILE`
 * (virtual servers, checkers, VRRP states from the notify FIFO, `@ulvs lvs_sync_daemon`).
 *
 *   vrrp_sync_group G_NAT { VI_EXT (VIP on the outside link), VI_INT (DIP on the inside link) }
 *
 * The two directors' files differ only in priority (and, in the lab, where each director's
 * FIFO and admin socket live: two directors share one file system there). `track` chooses
 * how keepalived notices a dead ulvsd:
 *   script  vrrp_script running `ulvsadm -L --timeout` against the admin socket every second
 *           (weight 0: a failure puts the instance, and with it the sync group, in FAULT;
 *           init_fail: FAULT until ulvsd first answers)
 *   none    no tracking: the control that shows a dead ulvsd keeps MASTER
 * (keepalived 2.2.7's vrrp_track_process cannot be used inside a network namespace: the
 * kernel's process-events connector refuses it there, "Failed to set/clear process event
 * listen - errno 111", and the instance stays in FAULT.)
 */

export interface PairConfigOptions {
  /** 150 for the preferred director, 100 for the other */
  priority: number;
  vip: string;
  /** the real servers' gateway, moved with the VIP */
  dip: string;
  dipPrefix: number;
  outside: string;
  inside: string;
  /** keepalived's notify FIFO, read by ulvsd */
  fifo: string;
  /** the command keepalived runs to see ulvsd alive (argv words), for track 'script' */
  aliveCheck: string[];
  track: 'script' | 'none';
  realServers: string[];
  vport: number;
  /** the real servers' port (direct routing and tunnelling keep vport: give vport) */
  rport: number;
  /** the forwarding method, keepalived's lb_kind (default NAT); TUN is IP-in-IP */
  method?: 'nat' | 'dr' | 'tun';
  /** VRRP router ids of the outside and inside instances; the inside one is the sync id */
  vrids: [number, number];
  /** false: no `@ulvs lvs_sync_daemon` line (no connection sync; the failover test's control) */
  sync?: boolean;
  /** keepalived's preempt_delay (s): how long a returning preferred director waits before it
   *  takes MASTER back; room for the master's re-announcements (ha-failover.test's failback) */
  preemptDelay?: number;
}

export function pairKeepalivedConf(o: PairConfigOptions): string {
  const track = o.track === 'script' ? ['  track_script {', '    ULVSD_ALIVE', '  }'] : [];
  const instance = (name: string, iface: string, vrid: number, addr: string) => [
    `vrrp_instance ${name} {`,
    '  state BACKUP',
    `  interface ${iface}`,
    `  virtual_router_id ${vrid}`,
    `  priority ${o.priority}`,
    '  advert_int 1',
    ...(o.preemptDelay ? [`  preempt_delay ${o.preemptDelay}`] : []),
    '  virtual_ipaddress {',
    `    ${addr} dev ${iface}`,
    '  }',
    ...track,
    '}',
  ];
  return [
    '! keepalived.conf of an ulvs director pair: keepalived -P -f THIS and ulvsd --keepalived THIS',
    'global_defs {',
    `  router_id ulvs_${o.priority}`,
    '  script_user root',
    `  notify_fifo ${o.fifo}`,
    ...(o.sync === false
      ? []
      : ['  # read by ulvsd only (config id ulvs); keepalived skips it: its own lvs_sync_daemon drives the kernel\'s daemon', `  @ulvs lvs_sync_daemon ${o.inside} VI_INT id ${o.vrids[1]}`]),
    '}',
    ...(o.track === 'script'
      ? ['vrrp_script ULVSD_ALIVE {', `  script "${o.aliveCheck.join(' ')}"`, '  interval 1', '  timeout 2', '  fall 1', '  rise 1', '  init_fail', '}']
      : []),
    'vrrp_sync_group G_NAT {',
    '  group {',
    '    VI_EXT',
    '    VI_INT',
    '  }',
    '}',
    ...instance('VI_EXT', o.outside, o.vrids[0], `${o.vip}/32`),
    ...instance('VI_INT', o.inside, o.vrids[1], `${o.dip}/${o.dipPrefix}`),
    `virtual_server ${o.vip} ${o.vport} {`,
    '  lb_algo rr',
    `  lb_kind ${(o.method ?? 'nat').toUpperCase()}`,
    '  protocol TCP',
    ...o.realServers.flatMap((rs) => [`  real_server ${rs} ${o.rport} {`, '    TCP_CHECK {', '      connect_timeout 2', '    }', '  }']),
    '}',
    '',
  ].join('\n');
}
