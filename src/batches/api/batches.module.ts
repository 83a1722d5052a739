import { Module } from '@nestjs/common';
import { AuthModule } from '../../auth/auth.module';
import { FilesModule } from '../../files/files.module';
import { BatchesController } from './batches.controller';
import { BatchResultsService } from './batch-results.service';
import { BatchRetryService } from './batch-retry.service';
import { BatchesService } from './batches.service';

@Module({
  imports: [AuthModule, FilesModule],
  controllers: [BatchesController],
  providers: [BatchesService, BatchRetryService, BatchResultsService],
})
export class BatchesModule {}
