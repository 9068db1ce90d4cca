import * as net from 'node:net';

/** What the proxy does with the bytes of its connections. */
export type TcpProxyState = 'open' | 'blackholed';

export interface TcpProxyTarget {
  host: string;
  port: number;
}

export interface TcpProxyOptions {
  /** Port to listen on (127.0.0.1). Ephemeral when left out. */
  listenPort?: number;
}

/**
 * How long a connection closed cleanly (FIN) may wait for its peer's FIN before it is destroyed.
 * A peer that never answers (itself stuck, or black-holed behind another proxy) must not keep the
 * socket open forever.
 */
const END_GRACE_MS = 1000;

/**
 * One client connection and the connection to the target made for it.
 * - `open`: bytes are forwarded both ways.
 * - `blackholed`: bytes are read and dropped both ways; nothing is closed.
 * - `closing`: being closed; bytes still arriving are dropped.
 */
interface Link {
  mode: 'open' | 'blackholed' | 'closing';
  client: net.Socket;
  /** Absent for a connection accepted while black-holed: no byte of it ever reaches the target. */
  upstream: net.Socket | undefined;
}

/**
 * A TCP proxy between one service and the broker, so a fault test can break that service's broker
 * link alone: cut it (both sides see the connection end) or black-hole it (both sides keep an open
 * connection that carries nothing, as when the network drops every packet, so each side learns
 * of it only from its own heartbeat timeout).
 *
 * Given several targets (the nodes of a cluster) it balances like a TCP load balancer in front of
 * one: each new connection goes to the next target in turn, or the one after if that refuses, and
 * a connection whose target dies breaks (its client reconnects, and lands on a live target).
 */
export class TcpProxy {
  #state: TcpProxyState = 'open';
  readonly #links = new Set<Link>();
  readonly #server: net.Server;
  readonly #targets: readonly TcpProxyTarget[];
  /** The target the next connection tries first. */
  #next = 0;

  private constructor(server: net.Server, targets: readonly TcpProxyTarget[]) {
    this.#server = server;
    this.#targets = targets;
  }

  /**
   * Listens on 127.0.0.1 (an ephemeral port unless `listenPort` is given) and forwards to
   * `target`, or to one of `target`s in turn.
   */
  static start(target: TcpProxyTarget | readonly TcpProxyTarget[], options: TcpProxyOptions = {}): Promise<TcpProxy> {
    const targets = (Array.isArray(target) ? target : [target]).map((t: TcpProxyTarget) => ({
      host: t.host,
      port: t.port,
    }));
    if (targets.length === 0) throw new Error('TcpProxy needs a target');
    const server = net.createServer();
    const proxy = new TcpProxy(server, targets);
    server.on('connection', (client) => proxy.#accept(client));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(options.listenPort ?? 0, '127.0.0.1', () => {
        server.off('error', onError);
        // A listening server's errors (e.g. EMFILE on accept) must not crash the fault suite.
        server.on('error', () => {});
        resolve(proxy);
      });
    });
  }

  /** Where clients connect (on 127.0.0.1). */
  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('TcpProxy is not listening');
    return address.port;
  }

  get state(): TcpProxyState {
    return this.#state;
  }

  /** Number of live client connections (open, black-holed, or closing but not yet closed). */
  get connections(): number {
    let n = 0;
    for (const link of this.#links) if (!link.client.destroyed) n++;
    return n;
  }

  /**
   * Closes every current connection cleanly on both sides (FIN after what was already written;
   * both the client and the target see the connection end). New connections are still accepted,
   * and forwarded or black-holed according to the state, which does not change.
   */
  cut(): void {
    for (const link of this.#links) this.#endLink(link);
  }

  /**
   * Stops forwarding bytes in both directions; every TCP connection stays open, and new ones are
   * accepted but black-holed too (without a connection to the target: nothing of them reaches it).
   *
   * Bytes are read and dropped rather than left unread (pausing the sockets). Dropping keeps the
   * TCP windows open, as when the network loses every packet: the sender's writes keep
   * succeeding and it hears nothing back at the AMQP level, so it notices only when its heartbeat
   * check times out. Pausing would instead fill the receive buffers and stall the sender's writes
   * on TCP back-pressure, which is a different fault (a peer that stops reading), and it would let
   * the held bytes be delivered late if the sockets were ever resumed.
   *
   * A close or reset on one side of a black-holed connection is not passed to the other side
   * either: a black hole carries no FIN and no RST.
   */
  blackhole(): void {
    this.#state = 'blackholed';
    for (const link of this.#links) {
      if (link.mode !== 'open') continue;
      link.mode = 'blackholed';
      // Either side may be paused by back-pressure: read it again, to drop what arrives.
      link.client.resume();
      link.upstream?.resume();
    }
  }

  /**
   * Forwards again, for new connections. Connections that were black-holed are closed (FIN on
   * both sides), not resumed: each side has written bytes the other never got, so their byte
   * streams cannot go on correctly (an AMQP peer would read a frame from the middle of another).
   * Over a real network the first packet after the outage would get a reset from a peer that has
   * long given up; closing them here gives each side the same answer, deterministically.
   */
  heal(): void {
    this.#state = 'open';
    for (const link of this.#links) if (link.mode === 'blackholed') this.#endLink(link);
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const sockets: net.Socket[] = [];
    for (const link of this.#links) {
      link.mode = 'closing';
      sockets.push(link.client);
      if (link.upstream) sockets.push(link.upstream);
    }
    const socketsClosed = sockets.map((socket) =>
      socket.closed ? undefined : new Promise<void>((resolve) => socket.once('close', () => resolve())),
    );
    for (const socket of sockets) socket.destroy();
    await Promise.all([closed, ...socketsClosed]);
    this.#links.clear();
  }

  #accept(client: net.Socket): void {
    client.setNoDelay(true);
    const link: Link = { mode: this.#state, client, upstream: undefined };
    this.#links.add(link);
    if (link.mode === 'open') {
      // The client's bytes wait in its socket (no reader yet) until a target accepts; a client
      // that goes away meanwhile takes the attempt with it.
      client.on('error', () => {});
      client.once('close', () => {
        if (link.upstream?.connecting) link.upstream.destroy();
        this.#forgetIfClosed(link);
      });
      this.#dial(link, this.#next++ % this.#targets.length, this.#targets.length);
    } else {
      this.#wire(link, client, undefined);
    }
  }

  /** Connects `link` to target `index`, else the following ones, `left` in all; none: the client is closed. */
  #dial(link: Link, index: number, left: number): void {
    const target = this.#targets[index]!;
    const upstream = net.connect({ host: target.host, port: target.port });
    upstream.setNoDelay(true);
    link.upstream = upstream;
    const refused = () => {
      if (link.mode === 'open' && !link.client.destroyed && left > 1) {
        this.#dial(link, (index + 1) % this.#targets.length, left - 1);
      } else {
        link.client.destroy();
        this.#forgetIfClosed(link);
      }
    };
    upstream.once('error', refused);
    upstream.once('close', () => this.#forgetIfClosed(link));
    upstream.once('connect', () => {
      upstream.off('error', refused);
      if (link.client.destroyed) {
        upstream.destroy();
        return;
      }
      this.#wire(link, link.client, upstream);
      this.#wire(link, upstream, link.client);
    });
  }

  /** Forwards `from` to `to` while the link is open, and drops what it reads otherwise. */
  #wire(link: Link, from: net.Socket, to: net.Socket | undefined): void {
    from.on('data', (chunk: Buffer) => {
      if (link.mode !== 'open' || to === undefined || to.destroyed || to.writableEnded) return;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (link.mode === 'open') from.resume();
        });
      }
    });
    from.on('end', () => {
      // The peer half-closed. Node ends our side of `from` itself (allowHalfOpen is off); pass
      // the FIN on, after whatever was already written.
      if (link.mode === 'open' && to) this.#end(to);
    });
    // Resets and other socket errors are expected here (they are what a fault test provokes) and
    // must never crash the process: the socket is destroyed and 'close' follows.
    from.on('error', () => {});
    from.on('close', (hadError) => {
      if (link.mode === 'open' && to && !to.destroyed) {
        if (hadError) to.destroy();
        else this.#end(to);
      }
      this.#forgetIfClosed(link);
    });
  }

  #endLink(link: Link): void {
    link.mode = 'closing';
    link.client.resume();
    link.upstream?.resume();
    this.#end(link.client);
    if (link.upstream) this.#end(link.upstream);
  }

  /** Closes cleanly (FIN after the pending writes), and destroys it if the peer does not answer. */
  #end(socket: net.Socket): void {
    if (socket.destroyed) return;
    if (!socket.writableEnded) socket.end();
    setTimeout(() => socket.destroy(), END_GRACE_MS).unref();
  }

  #forgetIfClosed(link: Link): void {
    if (link.client.closed && (link.upstream === undefined || link.upstream.closed)) this.#links.delete(link);
  }
}
