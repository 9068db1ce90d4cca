import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { familyOf } from './address';
import { describeRefusal, type EgressPolicy, type Refusal } from './policy';

/** A request refused by the egress policy: a setting to change, not a network fault. */
export class EgressRefused extends Error {
  override readonly name = 'EgressRefused';
  constructor(
    readonly url: string,
    readonly refusal: Refusal,
    host: string,
  ) {
    const resolved = host === refusal.address ? '' : `${host} resolves to ${refusal.address}; `;
    super(`refused ${url}: ${resolved}${describeRefusal(refusal)}`);
  }
}

/** How a host name becomes addresses; the system resolver unless a test gives another. */
export type Resolve = (hostname: string) => Promise<readonly { address: string }[]>;

export interface GuardedGetOptions {
  policy: EgressPolicy;
  /** The read stops (and the connection is closed) after this many bytes of body. */
  maxBytes: number;
  /** Bytes of the body kept in `body`; the rest read is only hashed. All of it by default. */
  keepBytes?: number;
  /** Redirects followed, each judged like the first request. */
  maxRedirects?: number;
  signal?: AbortSignal;
  resolve?: Resolve;
}

export interface GuardedResponse {
  /** The URL that answered, after redirects. */
  url: string;
  /** The address connected to. */
  address: string;
  status: number;
  /** The first `keepBytes` bytes of the body. */
  body: Buffer;
  /** Bytes of body read. */
  bytes: number;
  /** sha256 (hex) of the body read. */
  sha256: string;
  /** The body was longer than `maxBytes`: the read stopped there. */
  truncated: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_REDIRECTS = 5;

const systemResolve: Resolve = (hostname) => lookup(hostname, { all: true, verbatim: true });

/**
 * GETs an http(s) URL the egress policy allows. The host is resolved once and every address it
 * resolves to must be allowed (a name that mixes public and refused addresses is refused, not
 * narrowed: it is a misconfiguration or a rebinding attempt); the connection then goes to the
 * first of them, whatever the name resolves to a moment later. Redirects are followed by hand,
 * each target judged the same way before any connection is made. Throws `EgressRefused` for a
 * refused address and ordinary errors for everything else.
 */
export async function guardedGet(url: string, options: GuardedGetOptions): Promise<GuardedResponse> {
  try {
    return await follow(url, options);
  } catch (err) {
    // Node's http says only "aborted"; the signal's reason says why (a timeout, a stop).
    if (options.signal?.aborted && !(err instanceof EgressRefused)) throw options.signal.reason as Error;
    throw err;
  }
}

async function follow(url: string, options: GuardedGetOptions): Promise<GuardedResponse> {
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  let target = new URL(url);
  for (let redirects = 0; ; redirects++) {
    const address = await pin(target, options);
    const response = await send(target, address, options.signal);
    const location = response.headers.location;
    if (!REDIRECTS.has(response.statusCode ?? 0) || location === undefined) {
      return { url: target.href, address, status: response.statusCode ?? 0, ...(await read(response, options)) };
    }
    response.destroy();
    if (redirects >= maxRedirects) throw new Error(`more than ${maxRedirects} redirects, the last to ${location}`);
    target = new URL(location, target);
  }
}

/** The one address to connect to for `target`, once the policy allowed every candidate. */
async function pin(target: URL, options: GuardedGetOptions): Promise<string> {
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new Error(`only http and https are fetched, not ${target.protocol} (${target.href})`);
  }
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  const candidates = familyOf(host)
    ? [host]
    : (await abortable((options.resolve ?? systemResolve)(host), options.signal)).map((found) => found.address);
  if (candidates.length === 0) throw new Error(`${host} resolves to no address`);
  for (const address of candidates) {
    const refusal = options.policy.refusal(address);
    if (refusal) throw new EgressRefused(target.href, refusal, host);
  }
  return candidates[0]!;
}

/** Sends the GET to `address` alone; the Host header and TLS name stay the URL's host. */
function send(target: URL, address: string, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
    const family = isIP(address);
    if (lookupOptions.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // No agent: a pooled socket could have been opened for another resolution of the name.
    const request = client.get(target, { agent: false, lookup: pinned, ...(signal ? { signal } : {}) }, resolve);
    request.on('error', reject);
  });
}

/** Reads at most `maxBytes` of body, keeping `keepBytes` of it; memory stays within those. */
async function read(response: IncomingMessage, options: GuardedGetOptions) {
  const keepBytes = options.keepBytes ?? options.maxBytes;
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let bytes = 0;
  let truncated = false;
  try {
    for await (const data of response) {
      let chunk = data as Buffer;
      if (bytes + chunk.length > options.maxBytes) {
        chunk = chunk.subarray(0, options.maxBytes - bytes);
        truncated = true;
      }
      bytes += chunk.length;
      hash.update(chunk);
      if (keptBytes < keepBytes) {
        const part = chunk.subarray(0, keepBytes - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      if (truncated) break;
    }
  } finally {
    // Past the cap, or failed: the rest of the body is not wanted, and neither is the socket.
    response.destroy();
  }
  return { body: Buffer.concat(kept), bytes, sha256: hash.digest('hex'), truncated };
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
