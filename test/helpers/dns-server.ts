import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import dnsPacket, { type Answer, type Packet, type TxtAnswer } from 'dns-packet';

/**
 * A real authoritative DNS server on 127.0.0.1 (UDP and TCP on the same random port), built on
 * dns-packet over node:dgram / node:net. Tests set TXT records at run time; it answers:
 *  - the TXT records of a name (truncated over UDP past 512 bytes, so the client retries over TCP);
 *  - NOERROR with no answer for a name that exists without TXT records (`addName`);
 *  - NXDOMAIN for any other name;
 *  - nothing at all for names (or everything) it is told to ignore, to test timeouts;
 *  - for a name behind a barrier, nothing until N queries have arrived, then all answers at once.
 * Every query it receives is recorded, so a test can prove the lookup went here.
 */

export interface DnsQuery {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface TestDnsServer {
  port: number;
  /** `127.0.0.1:<port>`, the GATEHOUSE_DNS_SERVERS value. */
  address: string;
  queries: DnsQuery[];
  setTxt(name: string, values: Array<string | string[]>): void;
  /** A name that exists without TXT records (answers NOERROR, no data). */
  addName(name: string): void;
  remove(name: string): void;
  /** Stay silent for this name (or for every name with `*`). */
  ignore(name: string): void;
  unignore(name: string): void;
  /** Answer SERVFAIL for this name. */
  fail(name: string): void;
  /** Hold the answers for this name until `count` queries for it have arrived, then answer them all (makes races deterministic). */
  barrier(name: string, count: number): void;
  close(): Promise<void>;
}

const key = (name: string) => name.toLowerCase().replace(/\.$/, '');
const UDP_MAX = 512;

export async function startDnsServer(attempt = 0): Promise<TestDnsServer> {
  const txt = new Map<string, Array<string | string[]>>();
  const names = new Set<string>();
  const ignored = new Set<string>();
  const failing = new Set<string>();
  const barriers = new Map<string, { count: number; held: Array<() => void> }>();
  const queries: DnsQuery[] = [];

  function build(query: Packet, transport: 'udp' | 'tcp'): Buffer | null {
    const q = query.questions?.[0];
    if (!q) return null;
    const name = key(q.name);
    queries.push({ name, type: q.type, transport });
    if (ignored.has('*') || ignored.has(name)) return null;
    const base = {
      type: 'response' as const,
      id: query.id ?? 0,
      questions: [q],
    };
    const flagsFor = (rcode: number) => dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode;
    if (failing.has(name)) return dnsPacket.encode({ ...base, flags: flagsFor(2) }); // SERVFAIL
    const records = txt.get(name);
    const exists = names.has(name) || records !== undefined;
    if (!exists) return dnsPacket.encode({ ...base, flags: flagsFor(3) }); // NXDOMAIN
    const answers: Answer[] =
      q.type === 'TXT' && records
        ? records.map((data): TxtAnswer => ({ type: 'TXT', name: q.name, class: 'IN', ttl: 60, data: Array.isArray(data) ? data : [data] }))
        : [];
    const full = dnsPacket.encode({ ...base, flags: flagsFor(0), answers });
    if (transport === 'udp' && full.length > UDP_MAX) {
      return dnsPacket.encode({ ...base, flags: flagsFor(0) | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
    }
    return full;
  }

  /** Answer now, or — for a name behind a barrier — once `count` queries for it have arrived. */
  function respond(query: Packet, transport: 'udp' | 'tcp', send: (res: Buffer) => void): void {
    const res = build(query, transport);
    if (!res) return;
    const name = key(query.questions?.[0]?.name ?? '');
    const barrier = barriers.get(name);
    if (!barrier) return send(res);
    barrier.held.push(() => send(res));
    if (barrier.held.length >= barrier.count) {
      barriers.delete(name);
      for (const release of barrier.held) release();
    }
  }

  const udp: Socket = createSocket('udp4');
  udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    let query: Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    respond(query, 'udp', (res) => udp.send(res, rinfo.port, rinfo.address));
  });

  const sockets = new Set<TcpSocket>();
  const tcp: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < len + 2) break;
        const msg = buf.subarray(2, len + 2);
        buf = buf.subarray(len + 2);
        let query: Packet;
        try {
          query = dnsPacket.decode(msg);
        } catch {
          sock.destroy();
          return;
        }
        respond(query, 'tcp', (res) => {
          const frame = Buffer.alloc(2);
          frame.writeUInt16BE(res.length);
          if (!sock.destroyed) sock.write(Buffer.concat([frame, res]));
        });
      }
    });
  });

  // UDP and TCP must share one port number (a resolver is given a single ip:port).
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, '127.0.0.1', () => {
      udp.off('error', reject);
      resolve();
    });
  });
  const port = udp.address().port;
  const listening = await new Promise<boolean>((resolve) => {
    const onError = () => resolve(false);
    tcp.once('error', onError);
    tcp.listen(port, '127.0.0.1', () => {
      tcp.off('error', onError);
      resolve(true);
    });
  });
  if (!listening) {
    // The TCP side of that port is in use: start over on another port.
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (attempt >= 20) throw new Error('could not bind UDP and TCP on one loopback port');
    return startDnsServer(attempt + 1);
  }

  return {
    port,
    address: `127.0.0.1:${port}`,
    queries,
    setTxt: (name, values) => void txt.set(key(name), values),
    addName: (name) => void names.add(key(name)),
    remove: (name) => {
      txt.delete(key(name));
      names.delete(key(name));
    },
    ignore: (name) => void ignored.add(name === '*' ? '*' : key(name)),
    unignore: (name) => void ignored.delete(name === '*' ? '*' : key(name)),
    fail: (name) => void failing.add(key(name)),
    barrier: (name, count) => void barriers.set(key(name), { count, held: [] }),
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}
