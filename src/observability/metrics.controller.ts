import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExtension, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { unauthorized } from '../common/openai-error';
import { Metrics } from './metrics';

/**
 * GET /metrics: the API's Prometheus metrics. Open by default, like most exporters: it shows
 * aggregates only (no tenant or batch ids, no request contents), and operators keep it off
 * the public path at their proxy. With `api.metricsToken` set it wants that bearer token;
 * tenants' API keys never open it (they are for one tenant's data; this is everyone's).
 */
@ApiTags('Health')
@Controller()
export class MetricsController {
  private readonly token: Buffer | null;

  constructor(
    private readonly metrics: Metrics,
    @Inject(CONFIG) config: BargeConfig,
  ) {
    this.token = config.api.metricsToken ? Buffer.from(`Bearer ${config.api.metricsToken}`) : null;
  }

  @Get('metrics')
  @ApiOperation({
    summary: "Prometheus metrics (Barge; no API key, the metrics token when it's set)",
  })
  @ApiExtension('x-barge', true)
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: "Prometheus' text format.", schema: { type: 'string' } })
  async scrape(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (this.token && !this.authorized(req.headers.authorization)) {
      throw unauthorized('GET /metrics needs the metrics token: Authorization: Bearer BARGE_METRICS_TOKEN.');
    }
    const text = await this.metrics.scrape();
    res.status(200).type(this.metrics.contentType).send(text);
  }

  private authorized(header: string | undefined): boolean {
    if (!header || !this.token) return false;
    const given = Buffer.from(header);
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }
}
