import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import {
  ApiBearerAuth,
  ApiBody,
  ApiDefaultResponse,
  ApiExtension,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import { ApiKeyGuard } from '../../auth/api-key.guard';
import { ApiKeyStore } from '../../auth/api-key-store';
import { listScope } from '../../auth/list-scope';
import { AuthenticatedTenant, CurrentTenant, readScope } from '../../auth/current-tenant.decorator';
import { invalidRequest, notFound } from '../../common/openai-error';
import { parsePageQuery } from '../../common/pagination';
import { PathIdPipe, requireStorable } from '../../common/tenant-input';
import { echo } from '../../common/text';
import { BatchResultsService, parseResultsQuery } from './batch-results.service';
import { BatchRetryService } from './batch-retry.service';
import { ref } from '../../openapi/schemas';
import { BatchesService, PROVIDER_KEY_HEADER } from './batches.service';
import { providerKeyProblem } from '../../tenants/provider-keys';

/** A path batch id: one that cannot exist answers like an unknown one (as BatchesService does). */
const BatchId = new PathIdPipe((id) => notFound(`No such Batch object: ${echo(id)}`, 'batch_id'));

/** Provider names are short identifiers (config: letters, digits, "_", "." and "-"). */
const MAX_PROVIDER_LENGTH = 256;

/**
 * The x-barge-provider-key header: its shape is checked here, and a refusal never quotes it
 * (nor does anything else: it is sealed before it is stored, and no answer holds it).
 */
function providerKeyHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const problem = providerKeyProblem(value);
  if (problem) {
    throw invalidRequest(
      `The ${PROVIDER_KEY_HEADER} header is not a usable key: ${problem}.`,
      PROVIDER_KEY_HEADER,
      'invalid_value',
    );
  }
  return value;
}

/** The x-barge-provider header, checked like any stored text and bounded before it is echoed. */
function providerHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  requireStorable(value, 'x-barge-provider');
  if (value.length > MAX_PROVIDER_LENGTH) {
    throw invalidRequest(
      `The x-barge-provider header may be at most ${MAX_PROVIDER_LENGTH} characters.`,
      'x-barge-provider',
      'invalid_value',
    );
  }
  return value;
}

@ApiTags('Batches')
@ApiBearerAuth()
@ApiDefaultResponse({ description: "An error, in OpenAI's envelope.", schema: ref('Error') })
@Controller('v1/batches')
@UseGuards(ApiKeyGuard)
export class BatchesController {
  constructor(
    private readonly batches: BatchesService,
    private readonly retries: BatchRetryService,
    private readonly results: BatchResultsService,
    private readonly keys: ApiKeyStore,
  ) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Create a batch over an uploaded JSONL file' })
  @ApiBody({ schema: ref('CreateBatchRequest') })
  @ApiHeader({
    name: 'x-barge-provider',
    required: false,
    description: 'Barge: send every request of the batch to this configured upstream.',
  })
  @ApiHeader({
    name: PROVIDER_KEY_HEADER,
    required: false,
    description:
      "Barge: your own key for the pinned upstream (x-barge-provider or metadata.barge_provider), sent as its Bearer token instead of the operator's, for this batch only; stored encrypted until the batch ends, never shown.",
  })
  @ApiHeader({
    name: 'idempotency-key',
    required: false,
    description: 'Barge: a retried create with the same key returns the same batch.',
  })
  @ApiOkResponse({ description: 'The new batch (status `validating`).', schema: ref('Batch') })
  create(
    @CurrentTenant() tenant: { id: string },
    @Body() body: unknown,
    @Headers('x-barge-provider') provider?: string,
    @Headers('idempotency-key') idempotencyKey?: string,
    @Headers(PROVIDER_KEY_HEADER) providerKey?: string,
  ) {
    return this.batches.create(tenant.id, body, {
      provider: providerHeader(provider),
      idempotencyKey,
      providerKey: providerKeyHeader(providerKey),
    });
  }

  /** Newest first, as OpenAI lists batches. */
  @Get()
  @ApiOperation({ summary: 'List your batches, newest first' })
  @ApiQuery({
    name: 'limit',
    required: false,
    schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
  })
  @ApiQuery({ name: 'after', required: false, description: 'A batch id: the page starts after it.' })
  @ApiQuery({
    name: 'tenant',
    required: false,
    description: "Barge, admin keys: only this tenant's batches (a tenant's name).",
  })
  @ApiOkResponse({ schema: ref('BatchList') })
  async list(@CurrentTenant() tenant: AuthenticatedTenant, @Query() query: Record<string, unknown>) {
    const page = parsePageQuery(query, { defaultLimit: 20, maxLimit: 100 });
    return this.batches.list(await listScope(this.keys, tenant, query), { ...page, order: 'desc' });
  }

  @Get(':id')
  @ApiOperation({ summary: 'Retrieve a batch' })
  @ApiParam({ name: 'id', description: 'A batch id (batch_...).' })
  @ApiOkResponse({ schema: ref('Batch') })
  get(@CurrentTenant() tenant: AuthenticatedTenant, @Param('id', BatchId) id: string) {
    return this.batches.get(readScope(tenant), id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel a batch',
    description: 'The batch goes to `cancelling`, then `cancelled`; results already in are kept.',
  })
  @ApiParam({ name: 'id', description: 'A batch id (batch_...).' })
  @ApiOkResponse({ schema: ref('Batch') })
  cancel(@CurrentTenant() tenant: { id: string }, @Param('id', BatchId) id: string) {
    return this.batches.cancel(tenant.id, id);
  }

  /** A new batch of this ended batch's failed (or expired, or cancelled) requests. */
  @Post(':id/retry')
  @HttpCode(200)
  @ApiExtension('x-barge', true)
  @ApiOperation({
    summary: 'Retry what did not succeed: a new batch of the failed (or expired, cancelled) requests',
    description:
      'Body: `include` (`failed`, `expired`, `cancelled`; default `failed`), `completion_window`, `metadata`. 409 while the batch runs.',
  })
  @ApiParam({ name: 'id', description: 'An ended batch id (batch_...).' })
  @ApiHeader({
    name: PROVIDER_KEY_HEADER,
    required: false,
    description:
      "Your own key for the original's pinned upstream, for the new batch only (the original's own key is not carried over).",
  })
  @ApiOkResponse({ schema: ref('Batch') })
  retry(
    @CurrentTenant() tenant: { id: string },
    @Param('id', BatchId) id: string,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey?: string,
    @Headers(PROVIDER_KEY_HEADER) providerKey?: string,
  ) {
    return this.retries.retry(tenant.id, id, body, idempotencyKey, providerKeyHeader(providerKey));
  }

  /**
   * Every outcome recorded so far as JSONL (the output/error line format) in input order,
   * during and after the batch. `X-Incomplete: true` while it has not ended; page on with
   * `after_line` = `X-Last-Line` while `X-Has-More` is true.
   */
  @Get(':id/results')
  @ApiExtension('x-barge', true)
  @ApiOperation({
    summary: 'Results so far, as JSONL in input order, while the batch runs and after',
    description:
      'Query: `after_line`, `limit`, `ok`, `custom_id`. Headers: `X-Incomplete`, `X-Has-More`, `X-Last-Line`.',
  })
  @ApiParam({ name: 'id', description: 'A batch id (batch_...).' })
  @ApiProduces('application/jsonl')
  @ApiOkResponse({ description: 'One output or error line per recorded request.' })
  async resultLines(
    @CurrentTenant() tenant: { id: string },
    @Param('id', BatchId) id: string,
    @Query() query: Record<string, unknown>,
    @Res() res: Response,
  ): Promise<void> {
    const page = await this.results.page(tenant.id, id, parseResultsQuery(query));
    res.status(200).set({
      'Content-Type': 'application/jsonl',
      'X-Incomplete': String(page.incomplete),
      'X-Has-More': String(page.hasMore),
      ...(page.lastLine !== null && { 'X-Last-Line': String(page.lastLine) }),
    });
    try {
      for await (const line of page.lines) {
        if (!res.write(`${line}\n`)) {
          // Wait for the client to take more (or to hang up).
          await new Promise((resolve) => {
            res.once('drain', resolve);
            res.once('close', resolve);
          });
        }
        if (res.destroyed) return;
      }
    } catch (err) {
      // Nothing sent yet: an error answer; midway: sendError cuts the stream (the client sees it short).
      if (!res.headersSent) throw err;
      res.destroy();
      return;
    }
    res.end();
  }
}
