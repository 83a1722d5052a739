// The console's only way to the server: the /v1 API, same origin, with the signed-in key as a
// Bearer header set from script. The key lives in sessionStorage (this tab, until it closes),
// never in a URL, a cookie or localStorage.

const KEY_NAME = 'barge.apiKey';

export const session = {
  key: () => sessionStorage.getItem(KEY_NAME),
  signIn: (key) => sessionStorage.setItem(KEY_NAME, key),
  signOut: () => sessionStorage.removeItem(KEY_NAME),
};

/** An answer that is not 2xx, with the fields of OpenAI's error envelope. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `The server answered ${status}.`);
    this.status = status;
    this.code = error?.code ?? null;
    this.type = error?.type ?? null;
  }
}

const unreachable = () => new ApiError(0, { message: 'The server could not be reached; is it running?' });

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not the envelope (a proxy's page): the status says enough.
  }
  return new ApiError(res.status, body?.error ?? { message: `The server answered ${res.status}.` });
}

/** fetch() against the API; a non-2xx answer throws an ApiError. */
export async function api(method, path, { json, headers = {}, key = session.key() } = {}) {
  const init = {
    method,
    headers: { Authorization: `Bearer ${key}`, ...headers },
    cache: 'no-store',
    credentials: 'omit',
  };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw unreachable();
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export const apiJson = async (method, path, options) => (await api(method, path, options)).json();

/** Uploads a batch input file. XMLHttpRequest, not fetch: only it reports upload progress. */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/files');
    xhr.setRequestHeader('Authorization', `Bearer ${session.key()}`);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve(xhr.response)
        : reject(new ApiError(xhr.status, xhr.response?.error));
    xhr.onerror = () => reject(unreachable());
    xhr.send(form);
  });
}

/** The file name of a Content-Disposition header (RFC 6266: filename* wins over filename). */
export function filenameOf(disposition) {
  if (!disposition) return null;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (extended) {
    try {
      return decodeURIComponent(extended[1]);
    } catch {
      // fall through to the plain parameter
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"/i.exec(disposition) ?? /filename\s*=\s*([^;]+)/i.exec(disposition);
  return plain ? plain[1].trim() : null;
}

/**
 * Downloads a file's content and hands it to the browser as a download. The download needs the
 * key header, so a plain link cannot do it: the bytes go through a Blob (for files of many
 * gigabytes, the CLI's `barge batches download` streams to disk instead).
 */
export async function saveFile(fileId, fallbackName) {
  const res = await api('GET', `/v1/files/${encodeURIComponent(fileId)}/content`);
  const name = filenameOf(res.headers.get('content-disposition')) || fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}

/** The first `bytes` of a file (HTTP Range), cut after its last complete line. */
export async function readHead(fileId, bytes) {
  const res = await api('GET', `/v1/files/${encodeURIComponent(fileId)}/content`, {
    headers: { Range: `bytes=0-${bytes - 1}` },
  });
  const text = await res.text();
  const range = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  const truncated = res.status === 206 && range !== null && Number(range[1]) > bytes;
  return { text: truncated ? text.slice(0, text.lastIndexOf('\n') + 1) : text, truncated };
}
