import path from 'node:path';
import { createRequire } from 'node:module';
import express from 'express';
import helmet from 'helmet';

/**
 * GET /v1/openapi.json and the /docs reference (Swagger UI, served from this gateway's own
 * node_modules: no CDN). Both without an API key, as Stripe publishes its own: the document
 * describes the public contract and carries nothing of any app.
 */

const swaggerUiDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

// Swagger UI needs its script, its stylesheet, its inline SVG icons (data:) and the document
// (connect-src 'self'); it adds styles through the CSSOM, which style-src does not govern.
// validatorUrl: null, or it would send the document to validator.swagger.io for a badge.
const docsCsp = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
  },
  crossOriginEmbedderPolicy: false,
  referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
});

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Checkstand API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT_JS = `window.ui = SwaggerUIBundle({
  url: '/v1/openapi.json',
  dom_id: '#docs',
  deepLinking: true,
  validatorUrl: null,
  defaultModelsExpandDepth: 0,
});
`;

let documentModule: Promise<typeof import('./document.ts')> | undefined;

/** Mounted before /v1's api-key auth. */
export function createOpenApiRoutes(publicUrl: string): express.Router {
  const r = express.Router();
  r.get('/v1/openapi.json', async (_req, res) => {
    // The document's builder (every route's and object's schema, zod's JSON Schema output) is
    // loaded with the first request for it, not at every start.
    const { openApiJson } = await (documentModule ??= import('./document.ts'));
    res.set('Cache-Control', 'public, max-age=300');
    res.set('Access-Control-Allow-Origin', '*');
    res.type('application/json').send(openApiJson(publicUrl));
  });
  r.use('/docs', docsCsp);
  r.get('/docs', (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  r.get('/docs/init.js', (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'public, max-age=300').send(INIT_JS);
  });
  for (const file of ['swagger-ui-bundle.js', 'swagger-ui.css']) {
    r.get(`/docs/${file}`, (_req, res) => {
      res.sendFile(path.join(swaggerUiDir, file), { maxAge: '1h' });
    });
  }
  return r;
}
