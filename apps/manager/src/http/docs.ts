import path from 'node:path';
import express, { type Router } from 'express';

/** Swagger UI's prebuilt files, from the installed package: nothing is fetched from elsewhere. */
const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const ASSETS = ['swagger-ui.css', 'swagger-ui-bundle.js'] as const;

/**
 * The browser may load nothing but this manager's own files, so the page works offline and a
 * token typed into it goes nowhere else.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = (base: string) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Vigil manager API</title>
    <link rel="stylesheet" href="${base}/docs/swagger-ui.css" />
    <style>
      #token-form { font-family: sans-serif; padding: 12px 20px; background: #1b1b1b; color: #fff; display: flex; gap: 8px; align-items: center; }
      #token-form input { flex: 0 1 32em; padding: 4px; }
      #token-form small { color: #bbb; }
    </style>
  </head>
  <body>
    <form id="token-form">
      <label for="token">API token</label>
      <input id="token" type="password" autocomplete="off" placeholder="a read token, or empty when VIGIL_AUTH=off" />
      <button type="submit">Load</button>
      <small>kept in this tab only; sent with every request the page makes</small>
    </form>
    <div id="reference" data-spec="${base}/openapi.json"></div>
    <script src="${base}/docs/swagger-ui-bundle.js"></script>
    <script src="${base}/docs/init.js"></script>
  </body>
</html>
`;

/** Runs in the browser: the document needs a token like any other read, so the page asks for one. */
const INIT = `'use strict';
(function () {
  var KEY = 'vigil-api-token';
  var form = document.getElementById('token-form');
  var input = document.getElementById('token');
  var target = document.getElementById('reference');
  function render() {
    var token = sessionStorage.getItem(KEY) || '';
    target.innerHTML = '';
    SwaggerUIBundle({
      url: target.dataset.spec,
      domNode: target,
      deepLinking: true,
      validatorUrl: null,
      requestInterceptor: function (request) {
        if (token) request.headers.Authorization = 'Bearer ' + token;
        return request;
      },
    });
  }
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    render();
  });
  // Without a token yet it still tries: with VIGIL_AUTH=off none is needed, and otherwise the
  // reference shows the 401 until one is given.
  render();
})();
`;

/**
 * GET /docs: an interactive reference of the API (Swagger UI), served without a token since the
 * page and its scripts hold no data; the document it shows is fetched with the token the user
 * gives it.
 */
export function docsRouter(): Router {
  const router = express.Router();
  router.get('/docs', (req, res) => {
    res.set('content-security-policy', CONTENT_SECURITY_POLICY).type('html').send(PAGE(req.baseUrl));
  });
  router.get('/docs/init.js', (_req, res) => {
    res.set('content-security-policy', CONTENT_SECURITY_POLICY).type('js').send(INIT);
  });
  for (const asset of ASSETS) {
    router.get(`/docs/${asset}`, (_req, res) => {
      res.sendFile(path.join(SWAGGER_UI_DIR, asset), { maxAge: '1h' });
    });
  }
  return router;
}
