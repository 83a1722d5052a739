import type { FileRecord } from '../database/entities/file.entity';

/** OpenAI's File object. */
export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  expires_at: number | null;
  filename: string;
  purpose: string;
  /** Deprecated by OpenAI but still read by clients; files are usable as soon as they exist. */
  status: 'processed';
  status_details: null;
}

export interface DeletedFileObject {
  id: string;
  object: 'file';
  deleted: true;
}

const unixSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

export function toFileObject(file: FileRecord): FileObject {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: unixSeconds(file.createdAt),
    expires_at: file.expiresAt ? unixSeconds(file.expiresAt) : null,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    status_details: null,
  };
}

export function toDeletedFileObject(id: string): DeletedFileObject {
  return { id, object: 'file', deleted: true };
}
