import type { INestApplication } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { BARGE, SCHEMAS } from './schemas';

/** Request headers and query parameters OpenAI's API does not have. */
const BARGE_HEADERS = ['x-barge-provider', 'x-barge-provider-key', 'idempotency-key'];
const BARGE_QUERIES = ['tenant'];

/** Where the description and its docs page are served (both public, like the health checks). */
export const OPENAPI_JSON_PATH = '/v1/openapi.json';
export const DOCS_PATH = '/docs';

const DESCRIPTION = `A self-hosted, OpenAI-compatible Batch API. Requests and answers follow OpenAI's Files and
Batches API; what OpenAI's API does not have is marked \`x-barge: true\`. Every /v1 route
needs \`Authorization: Bearer sk-barge-...\` (keys are made with \`barge keys create\`).`;

/** package.json's version, found from here (src/openapi in tests, dist/src/openapi when built). */
function bargeVersion(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'barge' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

/**
 * The API's OpenAPI 3.1 description, generated from the controllers' decorators, with the
 * schemas of src/openapi/schemas.ts (JSON Schema as OpenAPI 3.1 has it, so the version is
 * set here: @nestjs/swagger writes 3.0 by default).
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Barge')
    .setDescription(DESCRIPTION)
    .setVersion(bargeVersion())
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key: sk-barge-...' })
    .build();
  const document = SwaggerModule.createDocument(app, config);
  document.openapi = '3.1.0';
  // @ApiHeader keeps no extensions: Barge's own headers are marked here.
  for (const operations of Object.values(document.paths)) {
    for (const operation of Object.values(operations as Record<string, { parameters?: object[] }>)) {
      for (const parameter of operation.parameters ?? []) {
        const { name, in: where } = parameter as { name: string; in: string };
        const own = where === 'header' ? BARGE_HEADERS : where === 'query' ? BARGE_QUERIES : [];
        if (own.includes(name)) Object.assign(parameter, BARGE);
      }
    }
  }
  document.components = {
    ...document.components,
    schemas: {
      ...(document.components?.schemas ?? {}),
      ...(SCHEMAS as unknown as Record<string, SchemaObject>),
    },
  };
  return document;
}

/**
 * Serves the description at /v1/openapi.json and Swagger UI at /docs, from swagger-ui-dist's
 * files in node_modules (nothing from a CDN; its online validator is off).
 */
export function setupOpenApi(app: INestApplication): OpenAPIObject {
  const document = buildOpenApiDocument(app);
  SwaggerModule.setup(DOCS_PATH, app, document, {
    jsonDocumentUrl: OPENAPI_JSON_PATH,
    raw: ['json'],
    customSiteTitle: 'Barge API',
    swaggerOptions: { validatorUrl: 'none', persistAuthorization: false },
  });
  return document;
}
