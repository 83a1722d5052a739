import { Controller, Get, Inject, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { join } from 'node:path';
import { notFound } from '../common/openai-error';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { Asset, consoleAssetDir, loadAsset } from './assets';
import { sendAsset } from './send-asset';

/** The files the page loads; nothing else under /console/assets is served. */
const ASSET_NAMES = ['console.js', 'api.js', 'format.js', 'console.css', 'favicon.svg'];

const escapeAttribute = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The web console: one static page and its script, styles and icon, all served from here
 * (nothing from a CDN, so it works air-gapped). The page holds no data: its script calls the
 * /v1 API with the key the user signs in with, so these routes need no key themselves.
 */
@ApiExcludeController()
@Controller('console')
export class ConsoleController {
  private readonly page: Asset;
  private readonly assets: Map<string, Asset>;

  constructor(@Inject(CONFIG) config: BargeConfig) {
    const dir = consoleAssetDir();
    // The only server-side value the page needs: which completion windows create accepts.
    const windows = escapeAttribute(config.batches.completionWindows.join(' '));
    this.page = loadAsset(join(dir, 'index.html'), (html) => html.replace('{{COMPLETION_WINDOWS}}', windows));
    this.assets = new Map(ASSET_NAMES.map((name) => [name, loadAsset(join(dir, name))]));
  }

  @Get()
  batches(@Req() req: Request, @Res() res: Response): void {
    sendAsset(req, res, this.page);
  }

  /** A batch's own page: the same document, whose script reads the id from the path. */
  @Get('batches/:id')
  batch(@Req() req: Request, @Res() res: Response): void {
    sendAsset(req, res, this.page);
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Req() req: Request, @Res() res: Response): void {
    const asset = this.assets.get(name);
    if (!asset) throw notFound('No such console file.');
    sendAsset(req, res, asset);
  }
}
