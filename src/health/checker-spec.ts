/**
 * What a health checker needs to run (keepalived's TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK,
 * UDP_CHECK, DNS_CHECK, SMTP_CHECK, PING_CHECK options, ecosystem.md §1.4). The keepalived.conf reader
 * (control/keepalived/config.ts) produces these; health/ depends on nothing above it.
 */
export type CheckerType = 'TCP_CHECK' | 'HTTP_GET' | 'SSL_GET' | 'MISC_CHECK' | 'UDP_CHECK' | 'DNS_CHECK' | 'SMTP_CHECK' | 'PING_CHECK';

export interface CheckerSpec {
  type: CheckerType;
  connectIp: number;
  connectPort: number;
  /** bindto: the source address of the check's connection or echo (IPv4), if given */
  bindTo?: number;
  /** seconds */
  connectTimeout: number;
  retry: number;
  delayBeforeRetry: number;
  delayLoop: number;
  warmup: number;
  alpha: boolean;
  /** HTTP_GET / SSL_GET */
  urls: { path: string; digest?: string; statusCodes: [number, number][] }[];
  virtualhost?: string;
  /** MISC_CHECK */
  miscPath?: string;
  miscTimeout: number;
  miscDynamic: boolean;
  /** UDP_CHECK payload (hex) and DNS_CHECK query */
  payload?: string;
  requireReply: boolean;
  dnsType: string;
  dnsName: string;
  /** SMTP_CHECK helo_name (keepalived's default smtpchecker.keepalived.org) */
  heloName: string;
}

