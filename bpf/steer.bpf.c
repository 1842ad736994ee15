// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * Queue steering for the multi-queue TUN (TUNSETSTEERINGEBPF): returns a hash; the TUN takes it
 * modulo the number of queues (workers). Both directions of a connection, and ICMP errors about
 * it, must reach the same worker, so the hash is of the *client side*, which both carry:
 *
 *   service not in the map     key = client address ^ client port
 *   service in the map         key = client address & its mask (the persistence netmask)
 *   queue hash = (key * 0x9E3779B1) >> 16   (u32 arithmetic, key in host order)
 *
 * Where the service side and the client side are (the packet starts at the IP header):
 *   to a VIP, TCP/UDP      service = destination (VIP:port)           client = source
 *   to a VIP, ICMP         quoted reply: service = quoted source        client = quoted destination
 *   other, TCP/UDP         service = source (RIP:port)                 client = destination
 *   other, ICMP            quoted request: service = quoted destination client = quoted source
 *
 * A packet whose skb->mark is in the map (side STEER_MARK: a firewall-mark service, ipvsadm -f)
 * is a request of that service whatever its destination: service = destination, client =
 * source, keyed as a service in the map when the entry says it is persistent (its mask: a client
 * network's connections to every port the mark takes, e.g. http and https, stay in one worker),
 * else as a service not in the map.
 *
 * The map (written by src/datapath/tun/steering.ts, never by a reload) says which addresses are
 * VIPs and which endpoints key on the masked client address; an endpoint with its exact port
 * wins over a port-0 entry of the same address (IPVS's lookup order). A packet too short for
 * the fields goes to hash 0.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"

/* Sized by the loader (bpf_map__set_max_entries) before the load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct steer_key);
	__type(value, struct steer_value);
} ulvs_steer_map SEC(".maps");

#define GOLDEN_RATIO_32 0x9E3779B1u

static __always_inline const struct steer_value *endpoint(__be32 addr, __be16 port, __u8 proto, __u8 side)
{
	struct steer_key k = { .addr = addr, .port = port, .proto = proto, .side = side };
	const struct steer_value *v = bpf_map_lookup_elem(&ulvs_steer_map, &k);

	if (v || port == 0)
		return v;
	k.port = 0;
	return bpf_map_lookup_elem(&ulvs_steer_map, &k);
}

/* IP header length in bytes of the header at `off`, or 0 if the packet is too short. */
static __always_inline __u32 ip_hlen(struct __sk_buff *skb, __u32 off)
{
	__u8 b;

	if (bpf_skb_load_bytes(skb, off, &b, 1))
		return 0;
	return (b & 0x0f) << 2;
}

SEC("socket")
int ulvs_steer(struct __sk_buff *skb)
{
	struct iphdr ip;	/* the outer header, or the quoted one for ICMP */
	__be16 ports[2];	/* source, destination: of the outer or the quoted L4 header */
	__u32 ip_off = 0, l4_off;
	int icmp, to_vip;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
		return 0;
	if (skb->mark) {
		struct steer_key mk = { .addr = bpf_htonl(skb->mark), .side = STEER_MARK };
		const struct steer_value *m = bpf_map_lookup_elem(&ulvs_steer_map, &mk);

		if (m && ip.protocol != IPPROTO_ICMP) {
			if (bpf_skb_load_bytes(skb, ip_hlen(skb, 0), ports, sizeof(ports)))
				return 0;
			__u32 mkey = m->pad ? bpf_ntohl(ip.saddr) & m->mask : bpf_ntohl(ip.saddr) ^ bpf_ntohs(ports[0]);

			return (mkey * GOLDEN_RATIO_32) >> 16;
		}
	}
	struct steer_key vip = { .addr = ip.daddr, .side = STEER_VIP };
	to_vip = bpf_map_lookup_elem(&ulvs_steer_map, &vip) != NULL;
	icmp = ip.protocol == IPPROTO_ICMP;
	l4_off = ip_hlen(skb, 0);
	if (icmp) {
		ip_off = l4_off + 8;	/* the ICMP header, then the quoted IP header */
		if (bpf_skb_load_bytes(skb, ip_off, &ip, sizeof(ip)))
			return 0;
		l4_off = ip_off + ip_hlen(skb, ip_off);
	}
	if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
		return 0;

	/* the client is the source of a request and of the quoted request in an outgoing error */
	int client_is_src = to_vip != icmp;
	__be32 caddr = client_is_src ? ip.saddr : ip.daddr;
	__be16 cport = client_is_src ? ports[0] : ports[1];
	__be32 saddr = client_is_src ? ip.daddr : ip.saddr;
	__be16 sport = client_is_src ? ports[1] : ports[0];
	const struct steer_value *v = endpoint(saddr, sport, ip.protocol, to_vip ? STEER_SERVICE : STEER_REAL);
	__u32 key = v ? bpf_ntohl(caddr) & v->mask : bpf_ntohl(caddr) ^ bpf_ntohs(cport);

	return (key * GOLDEN_RATIO_32) >> 16;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
