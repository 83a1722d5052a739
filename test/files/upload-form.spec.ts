import { buildConfig } from '../../src/config/config';
import { OpenAIError } from '../../src/common/openai-error';
import { sanitizeFilename, UploadForm } from '../../src/files/upload-form';

const limits = buildConfig({
  BARGE_POSTGRES_URL: 'postgres://x@localhost/x',
  BARGE_STORAGE_ENDPOINT: 'http://localhost:9000',
  BARGE_STORAGE_ACCESS_KEY: 'a',
  BARGE_STORAGE_SECRET_KEY: 'b',
  BARGE_STORAGE_BUCKET: 'barge',
  BARGE_MAX_FILE_BYTES: '1000',
  BARGE_MAX_BATCH_FILE_BYTES: '100',
}).limits;

function errorOf(fn: () => unknown): OpenAIError {
  try {
    fn();
  } catch (err) {
    return err as OpenAIError;
  }
  throw new Error('expected an error');
}

describe('sanitizeFilename', () => {
  it.each([
    ['input.jsonl', 'input.jsonl'],
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\batch.jsonl', 'batch.jsonl'],
    ['a\u0000b\r\nc\u202e.jsonl', 'abc.jsonl'],
    ['  spaced name.txt  ', 'spaced name.txt'],
    ['..', 'upload'],
    ['dir/', 'upload'],
    ['', 'upload'],
    ['données-été.jsonl', 'données-été.jsonl'],
    ['lone\ud800 surrogate\udfff.jsonl', 'lone surrogate.jsonl'],
    ['paired 😀.jsonl', 'paired 😀.jsonl'],
  ])('%p -> %p', (raw, clean) => {
    expect(sanitizeFilename(raw)).toBe(clean);
  });

  it('cuts long names to 255 characters, keeping the extension', () => {
    const name = sanitizeFilename(`${'n'.repeat(400)}.jsonl`);
    expect(name).toHaveLength(255);
    expect(name.endsWith('n.jsonl')).toBe(true);
    expect(Array.from(sanitizeFilename('é'.repeat(300)))).toHaveLength(255);
  });
});

describe('UploadForm', () => {
  const upload = { filename: 'in.jsonl', bytes: 10, verdict: 'jsonl' as const };

  it('streams under the batch cap once the purpose is known, under the general cap before', () => {
    const form = new UploadForm(limits);
    expect(form.streamingCap()).toBe(1000);
    form.setField('purpose', 'batch');
    expect(form.streamingCap()).toBe(100);
  });

  it('applies the batch rules after the upload when the purpose came late', () => {
    const late = (name: string, bytes: number, verdict: 'jsonl' | 'not_jsonl' | 'empty') => {
      const form = new UploadForm(limits);
      form.setField('purpose', 'batch');
      return errorOf(() => form.complete({ filename: name, bytes, verdict }));
    };
    expect(late('in.jsonl', 101, 'jsonl')).toMatchObject({
      status: 413,
      code: 'file_too_large',
      param: 'file',
    });
    expect(late('in.txt', 10, 'jsonl')).toMatchObject({ status: 400, param: 'file' });
    expect(late('in.jsonl', 10, 'not_jsonl')).toMatchObject({ status: 400, code: 'invalid_file_format' });
    expect(late('in.jsonl', 0, 'empty')).toMatchObject({ status: 400, code: 'empty_file' });
  });

  it('requires a purpose and refuses batch_output', () => {
    expect(errorOf(() => new UploadForm(limits).complete(upload))).toMatchObject({
      status: 400,
      param: 'purpose',
    });
    expect(errorOf(() => new UploadForm(limits).setField('purpose', 'batch_output'))).toMatchObject({
      status: 400,
      param: 'purpose',
      code: 'invalid_value',
    });
  });

  it('sets an expiry only when expires_after asks (FileStore applies the purpose defaults)', () => {
    const plain = new UploadForm(limits);
    plain.setField('purpose', 'batch');
    expect(plain.complete(upload).expiresAt).toBeUndefined();

    const custom = new UploadForm(limits);
    custom.setField('expires_after[seconds]', '7200');
    custom.setField('expires_after[anchor]', 'created_at');
    custom.setField('purpose', 'user_data');
    const withTtl = custom.complete(upload);
    expect(withTtl.expiresAt!.getTime() - withTtl.createdAt.getTime()).toBe(7_200_000);
  });

  it('checks expires_after like OpenAI: anchor created_at, 3600..2592000 seconds, both parts', () => {
    const form = () => new UploadForm(limits);
    expect(errorOf(() => form().setField('expires_after[anchor]', 'last_used'))).toMatchObject({
      status: 400,
    });
    for (const bad of ['3599', '2592001', 'abc', '1.5', '-1']) {
      expect(errorOf(() => form().setField('expires_after[seconds]', bad))).toMatchObject({
        param: 'expires_after[seconds]',
      });
    }
    const half = form();
    half.setField('purpose', 'user_data');
    half.setField('expires_after[seconds]', '3600');
    expect(errorOf(() => half.complete(upload))).toMatchObject({ param: 'expires_after[anchor]' });
  });

  it('refuses a repeated field', () => {
    const form = new UploadForm(limits);
    form.setField('purpose', 'batch');
    expect(errorOf(() => form.setField('purpose', 'user_data'))).toMatchObject({
      status: 400,
      param: 'purpose',
    });
  });

  it('refuses text Postgres cannot store in the fields it reads, naming the field', () => {
    for (const [name, value] of [
      ['purpose', 'batch\u0000'],
      ['expires_after[anchor]', 'created_at\ud800'],
      ['expires_after[seconds]', '3600\u0000'],
    ]) {
      expect(errorOf(() => new UploadForm(limits).setField(name, value))).toMatchObject({
        status: 400,
        param: name,
        code: 'invalid_text',
      });
    }
    // Fields it does not read are ignored, whatever they hold.
    expect(() => new UploadForm(limits).setField('note', '\u0000')).not.toThrow();
  });

  it('bounds what it echoes', () => {
    const err = errorOf(() => new UploadForm(limits).setField('purpose', 'p'.repeat(4000)));
    expect(err.message.length).toBeLessThan(500);
  });
});
