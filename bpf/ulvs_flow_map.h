/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The flow map of the kernel fast path (struct flow_key -> struct flow_value, ulvs_maps.h),
 * defined once for the programs that use it: fastpath.bpf.c, whose map ulvsd creates (sized by
 * the loader, bpf_map__set_max_entries, before the load), and tun_out.bpf.c, which ulvsd loads
 * with that same map's fd (datapath/tun/fastpath.ts loadTunOut).
 */
#ifndef ULVS_FLOW_MAP_H
#define ULVS_FLOW_MAP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "ulvs_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} ulvs_flows SEC(".maps");

#endif
