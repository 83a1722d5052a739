import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../../auth/api-key.guard';
import { CurrentTenant } from '../../auth/current-tenant.decorator';
import { parsePageQuery } from '../../common/pagination';
import { BatchesService } from './batches.service';

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
    return this.batches.create(tenant.id, body, { provider, idempotencyKey });
  }

  /** Newest first, as OpenAI lists batches. */
  @Get()
  list(@CurrentTenant() tenant: { id: string }, @Query() query: Record<string, unknown>) {
    const page = parsePageQuery(query, { defaultLimit: 20, maxLimit: 100 });
    return this.batches.list(tenant.id, { ...page, order: 'desc' });
  }

  @Get(':id')
  get(@CurrentTenant() tenant: { id: string }, @Param('id') id: string) {
    return this.batches.get(tenant.id, id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@CurrentTenant() tenant: { id: string }, @Param('id') id: string) {
    return this.batches.cancel(tenant.id, id);
  }
}
