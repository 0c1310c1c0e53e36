import { Resolver } from 'node:dns/promises';

/**
 * TXT lookups for domain verification, through node's c-ares resolver pointed at
 * GATEHOUSE_DNS_SERVERS (or the system's name servers when unset). Every lookup uses its own
 * Resolver so an overall deadline can cancel it without touching concurrent lookups.
 */

export type TxtFailureReason = 'no_record' | 'nxdomain' | 'timeout' | 'dns_error';

export type TxtLookupResult =
  | { ok: true; records: string[] }
  | { ok: false; reason: TxtFailureReason; dnsCode: string | null };

export type TxtLookup = (name: string) => Promise<TxtLookupResult>;

export interface TxtLookupOptions {
  /** `ip`, `ip:port`, `[ipv6]:port` or bare IPv6 (the GATEHOUSE_DNS_SERVERS format); null = system resolver. */
  servers: string[] | null;
  /** Overall deadline of one lookup, retries included. */
  timeoutMs?: number;
  /** c-ares per-try timeout and number of tries per server. */
  perTryMs?: number;
  tries?: number;
}

export const DNS_TIMEOUT_MS = 4000;

const CODES: Record<string, TxtFailureReason> = {
  ENODATA: 'no_record',
  ENOTFOUND: 'nxdomain',
  ETIMEOUT: 'timeout',
  ECANCELLED: 'timeout',
};

export function createTxtLookup(options: TxtLookupOptions): TxtLookup {
  const timeoutMs = options.timeoutMs ?? DNS_TIMEOUT_MS;
  const resolverOptions = { timeout: options.perTryMs ?? 1500, tries: options.tries ?? 2 };
  const make = () => {
    const r = new Resolver(resolverOptions);
    if (options.servers) r.setServers(options.servers);
    return r;
  };
  // (GATEHOUSE_DNS_SERVERS entries are IP addresses: the config schema refuses anything else at start-up.)

  return async (name) => {
    const resolver = make();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        resolver.cancel();
        reject(Object.assign(new Error(`DNS lookup of ${name} timed out`), { code: 'ETIMEOUT' }));
      }, timeoutMs);
    });
    try {
      const chunks = await Promise.race([resolver.resolveTxt(name), deadline]);
      // A TXT record may be split into several character-strings: they form one value.
      return { ok: true, records: chunks.map((parts) => parts.join('')) };
    } catch (e) {
      const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : null;
      return { ok: false, reason: (code && CODES[code]) || 'dns_error', dnsCode: code };
    } finally {
      clearTimeout(timer);
    }
  };
}
