import dns from 'node:dns';
import net from 'node:net';

/*
 * NETWORK RULE for tests: traffic only ever goes to 127.0.0.0/8 or ::1. A test that checks that an
 * address is refused installs this tripwire: it wraps net.Socket.prototype.connect (which
 * tls.connect and http(s) agents go through) so that any attempt to dial anything else — by IP,
 * or by a name whose answer is not loopback — is recorded and stopped before the real connect.
 */

export const offLoopbackAttempts: string[] = [];

/** Deliberately strict: only 127.x.x.x and ::1 as written — even ::ffff:127.0.0.1 trips it. */
export function isLoopbackTarget(host: string): boolean {
  return (net.isIPv4(host) && host.startsWith('127.')) || host === '::1';
}

function trip(what: string): Error {
  offLoopbackAttempts.push(what);
  return new Error(`tripwire: refusing to ${what}`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
type AnyLookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void;

/** Layer 2: lets the resolver answer, but hands the socket an error instead of a non-loopback answer. */
function tripwireLookup(inner: AnyLookup): AnyLookup {
  return (hostname, options, callback) =>
    inner(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const answers = Array.isArray(address) ? address.map((a) => a.address) : [address];
      const off = answers.filter((a) => !isLoopbackTarget(a));
      if (off.length === 0) return callback(null, address, family);
      callback(trip(`resolve ${hostname} -> ${off.join(', ')}`), '');
    });
}

export const realConnect = net.Socket.prototype.connect as (this: net.Socket, ...args: unknown[]) => net.Socket;
const realEmit = net.Socket.prototype.emit as (this: net.Socket, event: string | symbol, ...args: unknown[]) => boolean;

/** Layer 1: an IP-literal target is checked as the socket is asked to connect. */
function tripwireConnect(this: net.Socket, ...args: unknown[]): net.Socket {
  const [first, second] = args;
  // IPC (unix socket / named pipe) never leaves the machine.
  if (typeof first === 'string') return realConnect.apply(this, args);
  // net.connect() hands over its already-normalised [options, callback] array.
  const normalised = Array.isArray(first) ? (first as unknown[]) : null;
  const options = (normalised ? normalised[0] : typeof first === 'object' && first !== null ? first : {
    port: first,
    host: typeof second === 'string' ? second : undefined,
  }) as { host?: string; path?: unknown; lookup?: AnyLookup };
  // IPC exactly when net itself takes it for IPC (`!!path`): http(s) agents pass `path: null`.
  if (options.path) return realConnect.apply(this, args);
  const host = options.host || 'localhost';
  if (net.isIP(host)) {
    if (isLoopbackTarget(host)) return realConnect.apply(this, args);
    throw trip(`connect ${host}`);
  }
  // A name: the socket resolves it with options.lookup (or dns.lookup) and dials the answer.
  const lookup = tripwireLookup(options.lookup ?? (dns.lookup as unknown as AnyLookup));
  const callback = normalised ? normalised[1] : args.find((a) => typeof a === 'function');
  const patched = { ...options, lookup };
  return typeof callback === 'function' ? realConnect.call(this, patched, callback) : realConnect.call(this, patched);
}

/**
 * Layer 3, independent of how connect was called: net emits 'lookup' for every resolved address
 * and checks `connecting` right after, before dialing — destroying the socket there stops it.
 */
function tripwireEmit(this: net.Socket, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'lookup') {
    const [err, ip, , host] = args;
    if (err == null && typeof ip === 'string' && !isLoopbackTarget(ip)) {
      this.destroy(trip(`dial ${String(host)} -> ${ip}`));
      return true;
    }
  }
  return realEmit.call(this, event, ...args);
}


/** Install for a whole test file (beforeAll); `uninstall` in afterAll. */
export function installTripwire() {
  net.Socket.prototype.connect = tripwireConnect as typeof net.Socket.prototype.connect;
  net.Socket.prototype.emit = tripwireEmit as typeof net.Socket.prototype.emit;
}

export function uninstallTripwire() {
  net.Socket.prototype.connect = realConnect as typeof net.Socket.prototype.connect;
  net.Socket.prototype.emit = realEmit as typeof net.Socket.prototype.emit;
}
