import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiDefaultResponse,
  ApiExtension,
  ApiOkResponse,
  ApiOperation,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { ApiKeyStore } from '../auth/api-key-store';
import { AuthenticatedTenant, CurrentTenant } from '../auth/current-tenant.decorator';
import { listScope } from '../auth/list-scope';
import { invalidRequest, notFound } from '../common/openai-error';
import { single } from '../common/pagination';
import { echo } from '../common/text';
import { ref } from '../openapi/schemas';
import { parseGroupBy, parseUnixSeconds, UsageStore } from './usage';

/**
 * `GET /v1/usage`: the tenant's own usage, summed from its batches (requests by outcome,
 * tokens, cost at the configured prices), over batches created in [start_time, end_time),
 * grouped by model and/or day; or, with `batch_id`, one batch's usage and cost so far, per
 * upstream too. Barge's own route (the Batch object stays OpenAI's).
 */
@ApiTags('Usage')
@ApiBearerAuth()
@ApiDefaultResponse({ description: "An error, in OpenAI's envelope.", schema: ref('Error') })
@ApiExtension('x-barge', true)
@Controller('v1/usage')
@UseGuards(ApiKeyGuard)
export class UsageController {
  constructor(
    private readonly usage: UsageStore,
    private readonly keys: ApiKeyStore,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Your usage: requests by outcome, tokens and cost, summed from your batches' })
  @ApiQuery({ name: 'start_time', required: false, description: 'Unix seconds: batches created from then.' })
  @ApiQuery({ name: 'end_time', required: false, description: 'Unix seconds: batches created before then.' })
  @ApiQuery({ name: 'group_by', required: false, description: '`model`, `day`, or `model,day`.' })
  @ApiQuery({
    name: 'batch_id',
    required: false,
    description: "One batch's usage and cost so far, per upstream too (alone).",
  })
  @ApiQuery({
    name: 'tenant',
    required: false,
    description: "Admin keys: only this tenant's usage (a tenant's name); without it, every tenant's.",
  })
  @ApiOkResponse({ description: 'The figures, as JSON.' })
  async get(@CurrentTenant() tenant: AuthenticatedTenant, @Query() query: Record<string, unknown>) {
    const batchId = single(query, 'batch_id');
    // An admin key sees every tenant (each row naming its tenant), or the one `tenant` names.
    const scope = await listScope(this.keys, tenant, query);
    if (batchId !== undefined) {
      const other = ['start_time', 'end_time', 'group_by'].find((name) => query[name] !== undefined);
      if (other) {
        throw invalidRequest(`'batch_id' cannot be combined with '${other}'.`, other, 'invalid_value');
      }
      const figures = await this.usage.batch(scope, batchId);
      if (!figures) throw notFound(`No such Batch object: ${echo(batchId)}`, 'batch_id');
      return { object: 'usage.batch', batch_id: batchId, ...figures };
    }
    const since = parseUnixSeconds(query, 'start_time');
    const until = parseUnixSeconds(query, 'end_time');
    if (since && until && until <= since) {
      throw invalidRequest("'end_time' must be after 'start_time'.", 'end_time', 'invalid_value');
    }
    const groupBy = parseGroupBy(query.group_by);
    const rows = await this.usage.aggregate({
      tenantId: scope ?? undefined,
      since,
      until,
      groupBy,
      byTenant: tenant.admin === true,
    });
    return {
      object: 'list',
      start_time: since ? since.getTime() / 1000 : null,
      end_time: until ? until.getTime() / 1000 : null,
      group_by: groupBy,
      data: rows.map((row) => ({ object: 'usage.result', ...row })),
    };
  }
}
