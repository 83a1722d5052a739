import { Controller, Delete, Get, HttpCode, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import {
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiDefaultResponse,
  ApiExtension,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { AuthenticatedTenant, CurrentTenant } from '../auth/current-tenant.decorator';
import { BATCH_ENDPOINTS } from '../common/endpoints';
import { invalidRequest, OpenAIError, serviceUnavailable } from '../common/openai-error';
import { ListObject, parsePageQuery, single, toListObject } from '../common/pagination';
import { PathIdPipe } from '../common/tenant-input';
import type { FileRecord } from '../database/entities/file.entity';
import { parseEndpoint } from '../batches/api/create-batch.request';
import { ref } from '../openapi/schemas';
import { parseRange, rangeNotSatisfiable } from './byte-range';
import { CostEstimate, CostEstimator } from './cost-estimate';
import { contentTypeOf, FileStore, fileNotFound } from './file-store';
import { FileUploadService } from './file-upload.service';
import { DeletedFileObject, FileObject, toDeletedFileObject, toFileObject } from './file.presenter';

/** OpenAI allows up to 10,000 files per page and returns that many by default. */
const PAGE = { defaultLimit: 10_000, maxLimit: 10_000 };

/** A path file id: one that cannot exist answers like an unknown one. */
const FileId = new PathIdPipe(fileNotFound);

@ApiTags('Files')
@ApiBearerAuth()
@ApiDefaultResponse({ description: "An error, in OpenAI's envelope.", schema: ref('Error') })
@Controller('v1/files')
@UseGuards(ApiKeyGuard)
export class FilesController {
  constructor(
    private readonly files: FileStore,
    private readonly uploads: FileUploadService,
    private readonly estimator: CostEstimator,
  ) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Upload a file (multipart form, streamed to storage)' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ schema: ref('UploadFileRequest') })
  @ApiOkResponse({ schema: ref('File') })
  async upload(@CurrentTenant() tenant: AuthenticatedTenant, @Req() req: Request): Promise<FileObject> {
    return toFileObject(await this.uploads.upload(tenant.id, req));
  }

  @Get()
  @ApiOperation({ summary: 'List your files' })
  @ApiQuery({ name: 'purpose', required: false })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 10000 } })
  @ApiQuery({ name: 'after', required: false, description: 'A file id: the page starts after it.' })
  @ApiOkResponse({ schema: ref('FileList') })
  async list(
    @CurrentTenant() tenant: AuthenticatedTenant,
    @Query() query: Record<string, unknown>,
  ): Promise<ListObject<FileObject>> {
    const page = parsePageQuery(query, PAGE);
    return toListObject(await this.files.list(tenant.id, page, single(query, 'purpose')), toFileObject);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Retrieve a file' })
  @ApiParam({ name: 'id', description: 'A file id (file-...).' })
  @ApiOkResponse({ schema: ref('File') })
  async retrieve(
    @CurrentTenant() tenant: AuthenticatedTenant,
    @Param('id', FileId) id: string,
  ): Promise<FileObject> {
    return toFileObject(await this.files.get(tenant.id, id));
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Delete a file' })
  @ApiParam({ name: 'id', description: 'A file id (file-...).' })
  @ApiOkResponse({ schema: ref('DeletedFile') })
  async remove(
    @CurrentTenant() tenant: AuthenticatedTenant,
    @Param('id', FileId) id: string,
  ): Promise<DeletedFileObject> {
    await this.files.delete(tenant.id, id);
    return toDeletedFileObject(id);
  }

  /**
   * What a batch over the file would cost (Barge's own route): the file streamed once from
   * storage and priced per model at the upstream routing would try first.
   */
  @Get(':id/cost_estimate')
  @ApiOperation({
    summary: 'Estimate the cost of a batch over this input file',
    description:
      'Counts the requests, estimates their input tokens as validation does and bounds their output by max_tokens (or the configured default), per model, at the configured price of the upstream routing tries first (less the batch discount). A model without a price has cost null and is listed in unpriced_models.',
  })
  @ApiExtension('x-barge', true)
  @ApiParam({ name: 'id', description: 'A file id (file-...) with purpose `batch`.' })
  @ApiQuery({
    name: 'endpoint',
    required: true,
    schema: { type: 'string', enum: Object.keys(BATCH_ENDPOINTS) },
  })
  @ApiOkResponse({ schema: ref('CostEstimate') })
  async costEstimate(
    @CurrentTenant() tenant: AuthenticatedTenant,
    @Param('id', FileId) id: string,
    @Query() query: Record<string, unknown>,
  ): Promise<CostEstimate> {
    const endpoint = parseEndpoint(single(query, 'endpoint'));
    const file = await this.files.get(tenant.id, id);
    if (file.purpose !== 'batch') {
      throw invalidRequest(
        `File ${file.id} has purpose '${file.purpose}'; only batch input files (purpose 'batch') can be estimated.`,
        'id',
        'invalid_value',
      );
    }
    return this.estimator.estimate(file.id, endpoint, await this.openContent(file));
  }

  /**
   * The bytes, streamed from storage. Supports one HTTP range per request so large downloads
   * can resume; the id doubles as a strong ETag since a file's content never changes.
   */
  @Get(':id/content')
  @ApiOperation({
    summary: "A file's content",
    description: 'Streamed; one HTTP range per request (206), the file id as a strong ETag.',
  })
  @ApiParam({ name: 'id', description: 'A file id (file-...).' })
  @ApiProduces('application/jsonl', 'application/octet-stream')
  @ApiOkResponse({ description: 'The bytes.', schema: { type: 'string', format: 'binary' } })
  async content(
    @CurrentTenant() tenant: AuthenticatedTenant,
    @Param('id', FileId) id: string,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const file = await this.files.get(tenant.id, id);
    const etag = `"${file.id}"`;
    const ifRange = req.headers['if-range'];
    // A stale If-Range validator means "send it all" (RFC 9110 §13.1.5).
    const wanted =
      ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, file.bytes) : null;
    if (wanted?.kind === 'unsatisfiable') throw rangeNotSatisfiable(file.bytes);
    const range = wanted?.kind === 'partial' ? wanted.range : undefined;

    // HEAD (download managers probing size and range support) needs no bytes from storage.
    const body = req.method === 'HEAD' ? undefined : await this.openContent(file, range);
    res.status(range ? 206 : 200);
    res.attachment(file.filename);
    res.set({
      'Content-Type': contentTypeOf(file.filename),
      'Content-Length': String(range ? range.end - range.start + 1 : file.bytes),
      'Accept-Ranges': 'bytes',
      ETag: etag,
      ...(range && { 'Content-Range': `bytes ${range.start}-${range.end}/${file.bytes}` }),
    });
    if (!body) {
      res.end();
      return;
    }
    try {
      // pipeline handles both sides' errors; an idle client is cut by the server's socket timeout.
      await pipeline(body, res);
    } catch (err) {
      // The client hung up mid-download: nothing to answer, nothing to log.
      if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
      throw err;
    }
  }

  /** The stored bytes; storage being unreachable is a 503 the client may retry. */
  private async openContent(file: FileRecord, range?: { start: number; end: number }) {
    try {
      return await this.files.open(file, range);
    } catch (err) {
      if (err instanceof OpenAIError) throw err;
      const code = (err as { code?: string }).code;
      // The object went between the row lookup and now (a purge racing this download).
      if (code === 'NoSuchKey' || code === 'NotFound') throw fileNotFound(file.id);
      throw serviceUnavailable('File storage is unavailable right now; please retry the download later.');
    }
  }
}
