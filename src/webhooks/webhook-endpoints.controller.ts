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
import {
  ApiBearerAuth,
  ApiDefaultResponse,
  ApiExtension,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { AuthModule } from '../auth/auth.module';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { CurrentTenant } from '../auth/current-tenant.decorator';
import { notFound } from '../common/openai-error';
import { parsePageQuery, single } from '../common/pagination';
import { PathIdPipe } from '../common/tenant-input';
import { echo } from '../common/text';
import { ref } from '../openapi/schemas';
import { WebhookEndpointsService } from './webhook-endpoints.service';

const EndpointId = new PathIdPipe((id) =>
  notFound(`No such webhook endpoint: ${echo(id)}`, 'webhook_endpoint_id'),
);

type Tenant = { id: string };

@ApiTags('Webhook endpoints')
@ApiBearerAuth()
@ApiDefaultResponse({ description: "An error, in OpenAI's envelope.", schema: ref('Error') })
@ApiExtension('x-barge', true)
@Controller('v1/webhook_endpoints')
@UseGuards(ApiKeyGuard)
export class WebhookEndpointsController {
  constructor(private readonly endpoints: WebhookEndpointsService) {}

  @Post()
  @ApiOperation({ summary: 'Create a webhook endpoint (its signing secret is in this answer only)' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
  @HttpCode(200)
  create(@CurrentTenant() tenant: Tenant, @Body() body: unknown) {
    return this.endpoints.create(tenant.id, body);
  }

  @Get()
  @ApiOperation({ summary: 'List your webhook endpoints' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
  list(@CurrentTenant() tenant: Tenant, @Query() query: Record<string, unknown>) {
    return this.endpoints.list(tenant.id, parsePageQuery(query, { defaultLimit: 20, maxLimit: 100 }));
  }

  @Get(':id')
  @ApiOperation({ summary: 'Retrieve a webhook endpoint' })
  @ApiParam({ name: 'id', description: 'A webhook endpoint id.' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
  get(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string) {
    return this.endpoints.get(tenant.id, id);
  }

  /** Changes url, event_types, name, payload, or status (`enabled` turns a disabled endpoint back on). */
  @Post(':id')
  @ApiOperation({ summary: 'Update a webhook endpoint (url, events, name, status)' })
  @ApiParam({ name: 'id', description: 'A webhook endpoint id.' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
  @HttpCode(200)
  update(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string, @Body() body: unknown) {
    return this.endpoints.update(tenant.id, id, body);
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Delete a webhook endpoint' })
  @ApiParam({ name: 'id', description: 'A webhook endpoint id.' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
  delete(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string) {
    return this.endpoints.delete(tenant.id, id);
  }

  @Post(':id/rotate_secret')
  @ApiOperation({ summary: 'Rotate its signing secret (optionally keeping the old one valid for 24 h)' })
  @ApiParam({ name: 'id', description: 'A webhook endpoint id.' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
  @HttpCode(200)
  rotate(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string, @Body() body: unknown) {
    return this.endpoints.rotateSecret(tenant.id, id, body);
  }

  @Post(':id/test')
  @ApiOperation({ summary: "Send a test event and report the receiver's answer" })
  @ApiParam({ name: 'id', description: 'A webhook endpoint id.' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
  @HttpCode(200)
  test(@CurrentTenant() tenant: Tenant, @Param('id', EndpointId) id: string, @Body() body: unknown) {
    return this.endpoints.test(tenant.id, id, body);
  }

  /** Every delivery attempt, newest first; `event_id` narrows to one event. */
  @Get(':id/deliveries')
  @ApiOperation({ summary: "The endpoint's recent deliveries and their attempts" })
  @ApiParam({ name: 'id', description: 'A webhook endpoint id.' })
  @ApiOkResponse({ description: 'The endpoint (or list, or result) as JSON.' })
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
