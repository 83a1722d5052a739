import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Module,
  Param,
  Post,
  Query,
  UseGuards,
} from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { CurrentTenant } from '../auth/current-tenant.decorator';
import { notFound } from '../common/openai-error';
import { parsePageQuery, single } from '../common/pagination';
import { PathIdPipe } from '../common/tenant-input';
import { echo } from '../common/text';
import { WebhookEndpointsService } from './webhook-endpoints.service';

const EndpointId = new PathIdPipe((id) =>
  notFound(`No such webhook endpoint: ${echo(id)}`, 'webhook_endpoint_id'),
);

type Tenant = { id: string };

@Controller('v1/webhook_endpoints')
@UseGuards(ApiKeyGuard)
export class WebhookEndpointsController {
  constructor(private readonly endpoints: WebhookEndpointsService) {}

  @Post()
  @HttpCode(200)
  create(@CurrentTenant() tenant: Tenant, @Body() body: unknown) {
    return this.endpoints.create(tenant.id, body);
  }

  @Get()
  list(@CurrentTenant() tenant: Tenant, @Query() query: Record<string, unknown>) {
    return this.endpoints.list(tenant.id, parsePageQuery(query, { defaultLimit: 20, maxLimit: 100 }));
  }

  @Get(':id')
  get(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string) {
    return this.endpoints.get(tenant.id, id);
  }

  /** Changes url, event_types, name, payload, or status (`enabled` turns a disabled endpoint back on). */
  @Post(':id')
  @HttpCode(200)
  update(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string, @Body() body: unknown) {
    return this.endpoints.update(tenant.id, id, body);
  }

  @Delete(':id')
  delete(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string) {
    return this.endpoints.delete(tenant.id, id);
  }

  @Post(':id/rotate_secret')
  @HttpCode(200)
  rotate(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string, @Body() body: unknown) {
    return this.endpoints.rotateSecret(tenant.id, id, body);
  }

  @Post(':id/test')
  @HttpCode(200)
  test(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string, @Body() body: unknown) {
    return this.endpoints.test(tenant.id, id, body);
  }

  /** Every delivery attempt, newest first; `event_id` narrows to one event. */
  @Get(':id/deliveries')
  deliveries(
    @CurrentTenant() tenant: Tenant,
    @Param('id', EndpointId) id: string,
    @Query() query: Record<string, unknown>,
  ) {
    const page = parsePageQuery(query, { defaultLimit: 20, maxLimit: 100 });
    return this.endpoints.deliveries(tenant.id, id, page, single(query, 'event_id'));
  }
}

@Module({
  imports: [AuthModule],
  controllers: [WebhookEndpointsController],
  providers: [WebhookEndpointsService],
})
export class WebhooksModule {}
