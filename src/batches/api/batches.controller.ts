import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import { ApiKeyGuard } from '../../auth/api-key.guard';
import { CurrentTenant } from '../../auth/current-tenant.decorator';
import { invalidRequest, notFound } from '../../common/openai-error';
import { parsePageQuery } from '../../common/pagination';
import { PathIdPipe, requireStorable } from '../../common/tenant-input';
import { echo } from '../../common/text';
import { BatchResultsService, parseResultsQuery } from './batch-results.service';
import { BatchRetryService } from './batch-retry.service';
import { BatchesService } from './batches.service';

/** A path batch id: one that cannot exist answers like an unknown one (as BatchesService does). */
const BatchId = new PathIdPipe((id) => notFound(`No such Batch object: ${echo(id)}`, 'batch_id'));

/** Provider names are short identifiers (config: letters, digits, "_", "." and "-"). */
const MAX_PROVIDER_LENGTH = 256;

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

@Controller('v1/batches')
@UseGuards(ApiKeyGuard)
export class BatchesController {
  constructor(
    private readonly batches: BatchesService,
    private readonly retries: BatchRetryService,
    private readonly results: BatchResultsService,
  ) {}

  @Post()
  @HttpCode(200)
  create(
    @CurrentTenant() tenant: { id: string },
    @Body() body: unknown,
    @Headers('x-barge-provider') provider?: string,
    @Headers('idempotency-key') idempotencyKey?: string,
  ) {
    return this.batches.create(tenant.id, body, { provider: providerHeader(provider), idempotencyKey });
  }

  /** Newest first, as OpenAI lists batches. */
  @Get()
  list(@CurrentTenant() tenant: { id: string }, @Query() query: Record<string, unknown>) {
    const page = parsePageQuery(query, { defaultLimit: 20, maxLimit: 100 });
    return this.batches.list(tenant.id, { ...page, order: 'desc' });
  }

  @Get(':id')
  get(@CurrentTenant() tenant: { id: string }, @Param('id', BatchId) id: string) {
    return this.batches.get(tenant.id, id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@CurrentTenant() tenant: { id: string }, @Param('id', BatchId) id: string) {
    return this.batches.cancel(tenant.id, id);
  }

  /** A new batch of this ended batch's failed (or expired, or cancelled) requests. */
  @Post(':id/retry')
  @HttpCode(200)
  retry(
    @CurrentTenant() tenant: { id: string },
    @Param('id', BatchId) id: string,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey?: string,
  ) {
    return this.retries.retry(tenant.id, id, body, idempotencyKey);
  }

  /**
   * Every outcome recorded so far as JSONL (the output/error line format) in input order,
   * during and after the batch. `X-Incomplete: true` while it has not ended; page on with
   * `after_line` = `X-Last-Line` while `X-Has-More` is true.
   */
  @Get(':id/results')
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
