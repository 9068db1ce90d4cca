import http from 'node:http';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * Keep-alive connections, reused across requests. The benchmark sends tens of thousands of
 * requests from the same two cores as the system it measures; `fetch` spent half a core of
 * its own on them.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One HTTP request with an optional JSON body (a string is sent as it is) and extra headers. */
export function httpRequest(
  method: string,
  url: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<HttpResponse> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method,
        agent,
        headers: {
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...extraHeaders,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    request.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed just as it was reused: the request never reached
      // the server, so it is sent again on a fresh socket (Node's documented remedy).
      if (request.reusedSocket && err.code === 'ECONNRESET') {
        httpRequest(method, url, body, extraHeaders).then(resolve, reject);
        return;
      }
      reject(err);
    });
    request.end(payload);
  });
}

/** The header that authenticates a request with `token`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
