import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../../auth/api-key.guard';
import { AuthenticatedTenant, CurrentTenant, readScope } from '../../auth/current-tenant.decorator';
import { invalidRequest, notFound } from '../../common/openai-error';
import { parsePageQuery } from '../../common/pagination';
import { PathIdPipe, requireStorable } from '../../common/tenant-input';
import { echo } from '../../common/text';
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
  constructor(private readonly batches: BatchesService) {}

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
  list(@CurrentTenant() tenant: AuthenticatedTenant, @Query() query: Record<string, unknown>) {
    const page = parsePageQuery(query, { defaultLimit: 20, maxLimit: 100 });
    return this.batches.list(readScope(tenant), { ...page, order: 'desc' });
  }

  @Get(':id')
  get(@CurrentTenant() tenant: AuthenticatedTenant, @Param('id', BatchId) id: string) {
    return this.batches.get(readScope(tenant), id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@CurrentTenant() tenant: { id: string }, @Param('id', BatchId) id: string) {
    return this.batches.cancel(tenant.id, id);
  }
}
