import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExtension, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Client } from '@temporalio/client';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { ref } from '../openapi/schemas';
import { OBJECT_STORAGE, ObjectStorage } from '../storage/object-storage';
import { pingTemporal } from '../temporal/temporal-client';

type CheckResult = { status: 'ok' } | { status: 'down'; error: string };

const CHECK_TIMEOUT_MS = 3_000;

async function check(fn: () => Promise<unknown>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([fn(), timeout]);
    return { status: 'ok' };
  } catch (err) {
    return { status: 'down', error: (err as Error).message || String(err) };
  } finally {
    clearTimeout(timer);
  }
}

@ApiTags('Health')
@Controller()
export class HealthController {
  constructor(
    @Inject(CONFIG) private readonly config: BargeConfig,
    private readonly dataSource: DataSource,
    @Inject(OBJECT_STORAGE) private readonly storage: ObjectStorage,
    @Inject(Client) private readonly temporal: Client,
  ) {}

  /** Liveness: the process is up and serving HTTP. */
  @Get('healthz')
  @ApiOperation({ summary: 'Liveness (Barge; no key needed)' })
  @ApiExtension('x-barge', true)
  @ApiOkResponse({ schema: ref('Health') })
  healthz() {
    return { status: 'ok' };
  }

  /** Readiness: every dependency answers. 503 names whatever is down. */
  @Get('readyz')
  @ApiOperation({ summary: 'Readiness: every dependency answers (Barge; no key needed)' })
  @ApiExtension('x-barge', true)
  @ApiOkResponse({ schema: ref('Readiness') })
  @ApiResponse({ status: 503, description: 'A dependency is down.', schema: ref('Readiness') })
  async readyz(@Res({ passthrough: true }) res: Response) {
    const [postgres, minio, temporal] = await Promise.all([
      check(() => this.dataSource.query('SELECT 1')),
      check(() => this.storage.ping()),
      check(() => pingTemporal(this.temporal, this.config.temporal.namespace)),
    ]);
    const checks = { postgres, minio, temporal };
    const down = Object.entries(checks)
      .filter(([, c]) => c.status === 'down')
      .map(([name]) => name);
    res.status(down.length ? 503 : 200);
    return { status: down.length ? 'unavailable' : 'ok', down, checks };
  }
}
