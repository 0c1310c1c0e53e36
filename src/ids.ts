import { randomFillSync } from 'node:crypto';

/**
 * ULIDs (https://github.com/ulid/spec): 48-bit millisecond time + 80 random bits, Crockford
 * base32, 26 characters, sortable by creation time, so an id doubles as a pagination cursor.
 * Monotonic within a process: ids made in the same millisecond increment the random part.
 * (The random parts come from a pool refilled by one randomFillSync call per 409 new
 * milliseconds, as crypto.randomUUID keeps its own; the `ulid` package drew one per character,
 * which showed up in profiles of the SSO callback.)
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODES = Array.from(ALPHABET, (ch) => ch.charCodeAt(0));

/** Random bytes for the random parts, 10 per new millisecond; refilled when spent. */
const pool = new Uint8Array(4090);
let poolAt = pool.length;
function fillRandom(into: Uint8Array): void {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  into.set(pool.subarray(poolAt, (poolAt += into.length)));
}

let lastTime = -1;
/** The random part of the last id; never leaves this module, so it is incremented in place. */
const lastRandom = new Uint8Array(10);
/** The 26 character codes of the id being made: the time part (10) is written once per millisecond. */
const codes: number[] = new Array<number>(26).fill(0);

function encodeTime(ms: number): void {
  for (let i = 9; i >= 0; i--) {
    codes[i] = CODES[ms % 32]!;
    ms = Math.floor(ms / 32);
  }
}

function encodeRandom(bytes: Uint8Array): void {
  // 80 bits → 16 base32 characters, 5 bits at a time.
  let buffer = 0;
  let bits = 0;
  let at = 10;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      codes[at++] = CODES[(buffer >>> (bits - 5)) & 31]!;
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
}

function increment(bytes: Uint8Array): void {
  let i = bytes.length - 1;
  while (i >= 0 && bytes[i] === 255) i--;
  // Refused before anything changes: every later id of this millisecond is refused as well.
  if (i < 0) throw new Error('ULID random part overflowed within one millisecond');
  bytes[i]!++;
  bytes.fill(0, i + 1);
}

export function newId(now = Date.now()): string {
  if (now <= lastTime) {
    increment(lastRandom);
  } else {
    lastTime = now;
    encodeTime(now);
    fillRandom(lastRandom);
  }
  encodeRandom(lastRandom);
  // One flat string (the request id of every answer is written into its headers).
  return String.fromCharCode.apply(null, codes);
}

export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
