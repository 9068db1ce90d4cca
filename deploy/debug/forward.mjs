// Forwards TCP ports to other containers, for the compose `debug` profile: the broker and the
// database publish no port of their own, and Compose cannot add ports to a service by profile,
// so this small service (profile debug) publishes them on 127.0.0.1 and relays each connection.
//
//   node forward.mjs <listen port>=<host>:<port> ...
import net from 'node:net';

const routes = process.argv.slice(2).map((spec) => {
  const match = /^(\d+)=([^:]+):(\d+)$/.exec(spec);
  if (!match) throw new Error(`expected <listen port>=<host>:<port>, got ${spec}`);
  return { listen: Number(match[1]), host: match[2], port: Number(match[3]) };
});
if (routes.length === 0) throw new Error('usage: node forward.mjs <listen port>=<host>:<port> ...');

for (const route of routes) {
  const server = net.createServer((client) => {
    const upstream = net.connect(route.port, route.host);
    // Either side failing ends both: a half-open relay would hold a client that can never talk.
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  // Inside the container every interface; compose publishes the port on the host's loopback only.
  server.listen(route.listen, '0.0.0.0', () => {
    console.log(`forwarding :${route.listen} to ${route.host}:${route.port}`);
  });
}
