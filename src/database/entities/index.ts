import { ApiKey } from './api-key.entity';
import { BatchRecord } from './batch.entity';
import { FileRecord } from './file.entity';
import { Tenant } from './tenant.entity';

export { ApiKey, BatchRecord, FileRecord, Tenant };
export const ENTITIES = [Tenant, ApiKey, FileRecord, BatchRecord];
