import { Inject, Module, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { DataSource } from 'typeorm';
import { AuthModule } from '../auth/auth.module';
import type { BargeConfig } from '../config/config';
import { CONFIG } from '../core.module';
import { OBJECT_STORAGE, ObjectStorage } from '../storage/object-storage';
import { FilePurgeScheduler } from './file-purge.scheduler';
import { FileStore } from './file-store';
import { FileUploadService } from './file-upload.service';
import { FilesController } from './files.controller';

@Module({
  imports: [AuthModule],
  controllers: [FilesController],
  providers: [
    {
      provide: FileStore,
      useFactory: (db: DataSource, storage: ObjectStorage, config: BargeConfig) =>
        new FileStore(db, storage, config),
      inject: [DataSource, OBJECT_STORAGE, CONFIG],
    },
    FileUploadService,
    FilePurgeScheduler,
  ],
  exports: [FileStore],
})
export class FilesModule implements OnApplicationBootstrap {
  constructor(@Inject(HttpAdapterHost) private readonly http: HttpAdapterHost) {}

  onApplicationBootstrap(): void {
    // Node ends any request still receiving after 5 minutes (server.requestTimeout); a 512 MB
    // upload over a slow link needs longer. Stalled uploads are cut by the multipart reader's
    // idle timeout instead, and headersTimeout still guards against slow headers.
    const server = this.http.httpAdapter?.getHttpServer() as Server | undefined;
    if (server) server.requestTimeout = 0;
  }
}
