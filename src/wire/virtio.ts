/**
 * struct virtio_net_hdr (include/uapi/linux/virtio_net.h), the 10 bytes a TUN opened with
 * IFF_VNET_HDR puts before every packet (perf-notes §2). Little-endian on x86.
 *
 *   0 flags (u8)        VIRTIO_NET_HDR_F_NEEDS_CSUM = 1: the L4 checksum is partial
 *   1 gso_type (u8)     NONE 0, TCPV4 1, UDP 3, TCPV6 4, UDP_L4 5; | ECN 0x80
 *   2 hdr_len (u16)     length of the headers to copy to each segment
 *   4 gso_size (u16)    MSS of the segments the kernel will cut
 *   6 csum_start (u16)  where checksumming starts (from the start of the packet)
 *   8 csum_offset (u16) where to store it, from csum_start
 *
 * A NAT rewrite keeps header sizes, so the header is handed back unchanged.
 */
export const VNET_HDR_LEN = 10;
export const VNET = { FLAGS: 0, GSO_TYPE: 1, HDR_LEN: 2, GSO_SIZE: 4, CSUM_START: 6, CSUM_OFFSET: 8 } as const;
export const VnetFlag = { NEEDS_CSUM: 1, DATA_VALID: 2 } as const;
export const VnetGso = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, UDP_L4: 5, ECN: 0x80 } as const;

export function vnetNeedsCsum(b: Uint8Array, off: number): boolean {
  return (b[off + VNET.FLAGS]! & VnetFlag.NEEDS_CSUM) !== 0;
}
export function vnetGsoType(b: Uint8Array, off: number): number {
  return b[off + VNET.GSO_TYPE]! & 0x7f;
}
