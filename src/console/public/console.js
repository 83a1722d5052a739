// Barge's web console: sign in with an API key, watch batches, create, cancel, retry, download.
// Plain DOM, no framework: elements are built once and updated in place on every poll, so
// keyboard focus and screen readers are never thrown off by a re-render.
import { api, apiJson, ApiError, readHead, saveFile, session, uploadFile } from './api.js';
import {
  doneCount,
  etaSeconds,
  failureOf,
  formatBytes,
  formatCount,
  formatDuration,
  formatTime,
  isoTime,
  isTerminal,
  parseJsonl,
  RateEstimator,
  timeline,
} from './format.js';

const LIST_POLL_MS = 1500;
const IDLE_POLL_MS = 10_000;
const BATCH_POLL_MS = 1000;
const FAILURES_SHOWN = 100;
const ERROR_FILE_HEAD_BYTES = 256 * 1024;
const LIST_ERRORS_SHOWN = 3;

const $ = (id) => document.getElementById(id);

/** createElement with attributes, `text`, `class` and `on<event>` handlers. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const announce = (text) => {
  $('live').textContent = text;
};

const batchPath = (id) => `/v1/batches/${encodeURIComponent(id)}`;
const consolePath = (id) => `/console/batches/${encodeURIComponent(id)}`;

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

// ---- session ------------------------------------------------------------------------------

let stopped = false;

/** Any 401 means the key is gone (revoked, or never valid): back to the sign-in form. */
function handleFailure(err, show) {
  if (err instanceof ApiError && err.status === 401) {
    session.signOut();
    stopped = true;
    showSignIn('The server no longer accepts this key. Sign in again.');
    return;
  }
  show(err.message);
}

function showOnly(sectionId) {
  for (const id of ['sign-in', 'batches-view', 'batch-view']) $(id).hidden = id !== sectionId;
  $('sign-out').hidden = sectionId === 'sign-in';
}

function showSignIn(message = '') {
  showOnly('sign-in');
  $('sign-in-error').textContent = message;
  $('api-key').focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const input = $('api-key');
  const key = input.value.trim();
  const error = $('sign-in-error');
  if (!key) {
    error.textContent = 'Enter an API key.';
    input.focus();
    return;
  }
  const button = event.submitter ?? $('sign-in-form').querySelector('button');
  button.disabled = true;
  error.textContent = '';
  try {
    await apiJson('GET', '/v1/batches?limit=1', { key });
  } catch (err) {
    error.textContent =
      err.status === 401 ? `This key was refused: ${err.message}` : `Could not sign in: ${err.message}`;
    input.focus();
    return;
  } finally {
    button.disabled = false;
  }
  session.signIn(key);
  input.value = '';
  stopped = false;
  route();
}

function signOut() {
  session.signOut();
  // A fresh page drops every batch shown and every timer.
  location.assign('/console');
}

// ---- capabilities ---------------------------------------------------------------------------

/**
 * Whether this server can retry a batch's failed requests (POST /v1/batches/{id}/retry). A GET
 * on the path tells without doing anything: 405 where the route exists, 404 where it does not.
 */
let retrySupport;
function retrySupported() {
  retrySupport ??= api('GET', '/v1/batches/batch_probe/retry').then(
    () => true,
    (err) => !(err.status === 404),
  );
  return retrySupport;
}

// ---- one batch ------------------------------------------------------------------------------

/** A batch's card: built once, then `update(batch)` on every poll. */
class BatchCard {
  constructor(batch, { detailed }) {
    this.detailed = detailed;
    this.id = batch.id;
    this.rates = new RateEstimator();
    this.retryAllowed = false;
    this.fileSizes = new Map();

    const headingTag = detailed ? 'h2' : 'h3';
    this.link = h('a', { href: consolePath(batch.id), text: batch.id });
    this.statusBadge = h('span', { class: 'status' });
    this.meta = h('p', { class: 'meta' });
    this.progress = h('progress', { 'aria-label': `Progress of ${batch.id}`, max: 1 });
    this.counts = h('span', { class: 'counts' });
    this.stats = h('dl', { class: 'stats' });
    this.usage = h('dl', { class: 'usage' });
    this.steps = h('ol', { class: 'timeline', 'aria-label': 'Status timeline' });
    this.errors = h('div', { class: 'validation' });
    this.message = h('p', { class: 'card-message', 'aria-live': 'polite' });

    this.outputButton = h('button', { type: 'button', onclick: () => this.download('output') });
    this.errorButton = h('button', { type: 'button', onclick: () => this.download('error') });
    this.cancelButton = h('button', {
      type: 'button',
      class: 'danger',
      text: 'Cancel batch',
      onclick: () => this.cancel(),
    });
    this.retryButton = h('button', {
      type: 'button',
      text: 'Retry failed requests',
      hidden: true,
      onclick: () => this.retry(),
    });

    this.root = h(
      'article',
      { class: 'batch', 'data-batch-id': batch.id, 'aria-labelledby': `title-${batch.id}` },
      h('header', {}, h(headingTag, { id: `title-${batch.id}` }, this.link), this.statusBadge),
      this.meta,
      h('div', { class: 'progress-row' }, this.progress, this.counts),
      detailed ? this.stats : null,
      this.usage,
      this.steps,
      this.errors,
      h(
        'div',
        { class: 'actions', role: 'group', 'aria-label': `Actions for ${batch.id}` },
        this.outputButton,
        this.errorButton,
        this.cancelButton,
        this.retryButton,
      ),
      this.message,
    );
    retrySupported().then((supported) => {
      this.retryAllowed = supported;
      if (this.batch) this.updateActions();
    });
    this.update(batch);
  }

  update(batch) {
    const previous = this.batch;
    this.batch = batch;
    const counts = batch.request_counts;
    const done = doneCount(batch);
    this.rates.add(Date.now(), done);

    this.statusBadge.textContent = batch.status.replace('_', ' ');
    this.statusBadge.className = `status status-${batch.status}`;
    this.meta.replaceChildren(
      `${batch.endpoint}`,
      batch.model ? ` · ${batch.model}` : '',
      ' · created ',
      h('time', { datetime: isoTime(batch.created_at), text: formatTime(batch.created_at) }),
      batch.metadata?.description ? ` · ${batch.metadata.description}` : '',
    );

    if (counts.total > 0) {
      this.progress.max = counts.total;
      this.progress.value = done;
    } else if (isTerminal(batch)) {
      this.progress.max = 1;
      this.progress.value = 0;
    } else {
      this.progress.removeAttribute('value'); // indeterminate while validating
    }
    this.counts.textContent =
      counts.total > 0
        ? `${formatCount(done)} of ${formatCount(counts.total)} done · ${formatCount(counts.completed)} completed · ${formatCount(counts.failed)} failed`
        : batch.status === 'validating'
          ? 'validating the input file'
          : 'no requests';

    if (this.detailed) this.updateStats(batch);
    const usage = batch.usage;
    if (usage) {
      this.usage.replaceChildren(
        term('Input tokens', formatCount(usage.input_tokens)),
        term('Output tokens', formatCount(usage.output_tokens)),
        term('Total tokens', formatCount(usage.total_tokens)),
        this.detailed
          ? term('Cached input tokens', formatCount(usage.input_tokens_details?.cached_tokens ?? 0))
          : '',
        this.detailed
          ? term('Reasoning tokens', formatCount(usage.output_tokens_details?.reasoning_tokens ?? 0))
          : '',
      );
    }
    this.steps.replaceChildren(
      ...timeline(batch).map((step) =>
        h(
          'li',
          { class: `step-${step.status}` },
          h('span', { class: 'step-name', text: step.status.replace('_', ' ') }),
          ' ',
          h('time', { datetime: isoTime(step.at), text: formatTime(step.at) }),
        ),
      ),
    );
    this.updateErrors(batch);
    this.updateActions();

    if (previous && previous.status !== batch.status) {
      announce(`Batch ${batch.id} is now ${batch.status.replace('_', ' ')}: ${this.counts.textContent}.`);
    } else if (this.detailed && previous && counts.total > 0) {
      const step = (n) => Math.floor((n * 10) / counts.total);
      if (step(done) > step(doneCount(previous))) announce(`Batch ${batch.id}: ${this.counts.textContent}.`);
    }
  }

  updateStats(batch) {
    const now = Date.now();
    const rate = isTerminal(batch) ? null : this.rates.rate(batch, now);
    const eta = etaSeconds(batch, rate);
    const end = batch.completed_at ?? batch.failed_at ?? batch.expired_at ?? batch.cancelled_at;
    const elapsed = batch.in_progress_at ? (end ?? now / 1000) - batch.in_progress_at : null;
    this.stats.replaceChildren(
      term('Rate', rate ? `${rate < 10 ? rate.toFixed(1) : formatCount(Math.round(rate))} requests/s` : '—'),
      term('ETA', eta !== null ? formatDuration(eta) : isTerminal(batch) ? 'ended' : '—'),
      term('Running for', elapsed !== null ? formatDuration(elapsed) : '—'),
      term('Expires', batch.expires_at ? formatTime(batch.expires_at) : '—'),
      term('Input file', batch.input_file_id),
    );
  }

  updateErrors(batch) {
    const errors = batch.errors?.data ?? [];
    if (errors.length === 0) {
      this.errors.replaceChildren();
      return;
    }
    const shown = this.detailed ? errors : errors.slice(0, LIST_ERRORS_SHOWN);
    this.errors.replaceChildren(
      h('h4', { text: `Validation errors (${formatCount(errors.length)})` }),
      h(
        'ul',
        {},
        ...shown.map((e) =>
          h(
            'li',
            {},
            e.line ? `line ${e.line}: ` : '',
            h('code', { text: e.code ?? 'error' }),
            ` ${e.message ?? ''}`,
          ),
        ),
      ),
      shown.length < errors.length
        ? h('p', {}, h('a', { href: consolePath(batch.id), text: `All ${errors.length} errors` }))
        : null,
    );
  }

  updateActions() {
    const b = this.batch;
    this.setButton(
      this.outputButton,
      Boolean(b.output_file_id),
      `Download output${this.sizeOf(b.output_file_id)}`,
    );
    this.setButton(
      this.errorButton,
      Boolean(b.error_file_id),
      `Download errors${this.sizeOf(b.error_file_id)}`,
    );
    this.setButton(this.cancelButton, b.status === 'validating' || b.status === 'in_progress');
    const retriable = isTerminal(b) && b.request_counts.failed > 0;
    this.setButton(this.retryButton, this.retryAllowed && retriable);
  }

  /** Shows or hides a button; a hidden button that had focus hands it to the batch's link. */
  setButton(button, visible, text) {
    if (text !== undefined && button.textContent !== text) button.textContent = text;
    if (!visible && document.activeElement === button) this.link.focus();
    button.hidden = !visible;
  }

  sizeOf(fileId) {
    if (!fileId || !this.detailed) return '';
    const size = this.fileSizes.get(fileId);
    if (size === undefined) {
      this.fileSizes.set(fileId, null);
      apiJson('GET', `/v1/files/${encodeURIComponent(fileId)}`).then(
        (file) => {
          this.fileSizes.set(fileId, file.bytes);
          this.updateActions();
        },
        () => undefined,
      );
    }
    return size ? ` (${formatBytes(size)})` : '';
  }

  say(text, isError = false) {
    this.message.textContent = text;
    this.message.classList.toggle('error', isError);
  }

  /**
   * Runs one action of a button, once at a time. The button is marked aria-disabled, not
   * disabled: a disabled button drops the keyboard focus.
   */
  async busy(button, action) {
    if (button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    try {
      await action();
    } finally {
      button.removeAttribute('aria-disabled');
    }
  }

  download(kind) {
    const fileId = kind === 'output' ? this.batch.output_file_id : this.batch.error_file_id;
    return this.busy(kind === 'output' ? this.outputButton : this.errorButton, async () => {
      this.say(`Downloading the ${kind} file…`);
      try {
        const name = await saveFile(fileId, `${this.id}_${kind}.jsonl`);
        this.say(`Downloaded ${name}.`);
      } catch (err) {
        handleFailure(err, (m) => this.say(`Download failed: ${m}`, true));
      }
    });
  }

  cancel() {
    return this.busy(this.cancelButton, async () => {
      this.say('Cancelling…');
      try {
        this.update(await apiJson('POST', `${batchPath(this.id)}/cancel`));
        this.say('Cancel requested: requests in flight stop, finished results are kept.');
        poller.soon();
      } catch (err) {
        handleFailure(err, (m) => this.say(`Cancel failed: ${m}`, true));
      }
    });
  }

  retry() {
    return this.busy(this.retryButton, async () => {
      this.say('Creating a batch of the failed requests…');
      try {
        const retried = await apiJson('POST', `${batchPath(this.id)}/retry`, {
          json: { include: ['failed', 'expired', 'cancelled'] },
          headers: { 'Idempotency-Key': idempotencyKey() },
        });
        location.assign(consolePath(retried.id));
      } catch (err) {
        if (err.status === 404 && err.code === 'unknown_url') {
          this.retryAllowed = false;
          this.updateActions();
          this.say('This server cannot retry batches.', true);
        } else {
          handleFailure(err, (m) => this.say(`Retry failed: ${m}`, true));
        }
      }
    });
  }
}

/** One name and value of a description list (a div may group them, per HTML). */
function term(name, value) {
  return h('div', {}, h('dt', { text: name }), h('dd', { text: value }));
}

// ---- polling --------------------------------------------------------------------------------

/** One timer for whatever the page shows; faster while something is still running. */
const poller = {
  timer: null,
  refresh: null,
  start(refresh) {
    this.refresh = refresh;
    this.soon();
  },
  soon(delayMs = 0) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delayMs);
  },
  async tick() {
    if (stopped) return;
    let active = true;
    if (!document.hidden) {
      try {
        active = await this.refresh();
      } catch (err) {
        active = true;
        handleFailure(err, (m) => showPageError(m));
      }
    }
    if (!stopped) this.timer = setTimeout(() => this.tick(), active ? this.fastMs : IDLE_POLL_MS);
  },
  fastMs: LIST_POLL_MS,
};

let pageError = null;
function showPageError(message) {
  if (pageError) pageError.textContent = message;
}

// ---- the list -----------------------------------------------------------------------------

const list = { cards: new Map(), hasMore: false, lastId: null };

/** The list's card of `batch`, made on first sight and updated after. */
function cardFor(batch) {
  let card = list.cards.get(batch.id);
  if (card) card.update(batch);
  else {
    card = new BatchCard(batch, { detailed: false });
    card.item = h('li', {}, card.root);
    list.cards.set(batch.id, card);
  }
  return card;
}

function placeCards(batches) {
  const container = $('batch-list');
  let next = container.firstElementChild;
  for (const batch of batches) {
    const card = cardFor(batch);
    // Only what is out of place moves (moving a node would take focus from a button in it).
    if (card.item === next) next = next.nextElementSibling;
    else container.insertBefore(card.item, next);
  }
}

function renderListState() {
  $('list-empty').hidden = list.cards.size > 0;
  $('load-more').hidden = !list.hasMore;
}

async function refreshList() {
  const limit = Math.min(100, Math.max(20, list.cards.size));
  const page = await apiJson('GET', `/v1/batches?limit=${limit}`);
  placeCards(page.data);
  if (page.data.length >= list.cards.size) {
    list.hasMore = page.has_more;
    list.lastId = page.last_id;
  }
  renderListState();
  $('list-error').textContent = '';
  return [...list.cards.values()].some((card) => !isTerminal(card.batch));
}

async function loadMore() {
  const button = $('load-more');
  button.disabled = true;
  try {
    const page = await apiJson('GET', `/v1/batches?limit=20&after=${encodeURIComponent(list.lastId)}`);
    const container = $('batch-list');
    for (const batch of page.data) {
      if (!list.cards.has(batch.id)) container.append(cardFor(batch).item);
    }
    list.hasMore = page.has_more;
    list.lastId = page.last_id ?? list.lastId;
    renderListState();
  } catch (err) {
    handleFailure(err, (m) => ($('list-error').textContent = m));
  } finally {
    button.disabled = false;
  }
}

function setUpCreateForm() {
  const windows = (document.querySelector('meta[name="barge-completion-windows"]')?.content ?? '24h')
    .split(/\s+/)
    .filter((w) => /^\d+[smhd]$/.test(w));
  $('completion-window').replaceChildren(
    ...(windows.length ? windows : ['24h']).map((w) => h('option', { text: w })),
  );
  $('new-batch-form').addEventListener('submit', onCreate);
}

async function onCreate(event) {
  event.preventDefault();
  const status = $('new-batch-status');
  const fileInput = $('input-file');
  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle('error', isError);
  };
  const file = fileInput.files[0];
  if (!file) {
    say('Choose a JSONL file first.', true);
    fileInput.focus();
    return;
  }
  const button = $('create-batch');
  const progress = $('upload-progress');
  button.disabled = true;
  progress.value = 0;
  progress.hidden = false;
  try {
    say(`Uploading ${file.name} (${formatBytes(file.size)})…`);
    const uploaded = await uploadFile(file, (fraction) => (progress.value = fraction));
    say(`Uploaded ${uploaded.id}; creating the batch…`);
    const description = $('description').value.trim();
    const batch = await apiJson('POST', '/v1/batches', {
      json: {
        input_file_id: uploaded.id,
        endpoint: $('endpoint').value,
        completion_window: $('completion-window').value,
        ...(description && { metadata: { description } }),
      },
      headers: { 'Idempotency-Key': idempotencyKey() },
    });
    say(`Created ${batch.id}.`);
    fileInput.value = '';
    $('description').value = '';
    $('batch-list').prepend(cardFor(batch).item);
    renderListState();
    poller.soon(LIST_POLL_MS);
  } catch (err) {
    handleFailure(err, (m) => say(m, true));
  } finally {
    button.disabled = false;
    progress.hidden = true;
  }
}

function showList() {
  showOnly('batches-view');
  document.title = 'Batches · Barge console';
  pageError = $('list-error');
  poller.fastMs = LIST_POLL_MS;
  poller.start(refreshList);
}

// ---- a batch's page -------------------------------------------------------------------------

async function showBatch(id) {
  showOnly('batch-view');
  document.title = `${id} · Barge console`;
  $('batch-title').textContent = `Batch ${id}`;
  pageError = $('batch-error');
  let card = null;
  let failuresFor = null;
  let lastFailuresAt = 0;
  poller.fastMs = BATCH_POLL_MS;
  poller.start(async () => {
    let batch;
    try {
      batch = await apiJson('GET', batchPath(id));
    } catch (err) {
      if (err.status === 404) {
        $('batch-error').textContent = `No batch ${id} for this key.`;
        stopped = true;
        return false;
      }
      throw err;
    }
    $('batch-error').textContent = '';
    if (card) card.update(batch);
    else {
      card = new BatchCard(batch, { detailed: true });
      $('batch-detail').replaceChildren(card.root);
    }
    // Failures: again when the batch changes state, and every few seconds while it runs.
    const due = failuresFor !== batch.status || (!isTerminal(batch) && Date.now() - lastFailuresAt > 5_000);
    if (due) {
      failuresFor = batch.status;
      lastFailuresAt = Date.now();
      await showFailures(batch);
    }
    return !isTerminal(batch);
  });
}

/**
 * The batch's failed requests: from the results endpoint (GET /v1/batches/{id}/results,
 * recorded so far, also while the batch runs) where the server has it, else from the head of
 * the error file once the batch has one.
 */
let resultsEndpoint = true;

async function showFailures(batch) {
  const source = $('failures-source');
  const container = $('failures');
  let lines;
  let note;
  try {
    if (!resultsEndpoint) throw new ApiError(404, { code: 'unknown_url' });
    const res = await api('GET', `${batchPath(batch.id)}/results?status=failed&limit=${FAILURES_SHOWN}`);
    lines = parseJsonl(await res.text());
    const incomplete = res.headers.get('x-incomplete') === 'true';
    note = incomplete ? 'Failures recorded so far; the batch is still running.' : 'Every failed request.';
    if (lines.length >= FAILURES_SHOWN) note = `The first ${FAILURES_SHOWN} failed requests.`;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404 && err.code === 'unknown_url')) {
      handleFailure(err, (m) => (source.textContent = `Could not read the failures: ${m}`));
      return;
    }
    // This server has no results endpoint (an older Barge): the error file, once written.
    resultsEndpoint = false;
    if (!batch.error_file_id) {
      source.textContent = isTerminal(batch)
        ? 'No request failed.'
        : 'Failed requests are listed here when the batch ends and its error file is written.';
      container.replaceChildren();
      return;
    }
    const head = await readHead(batch.error_file_id, ERROR_FILE_HEAD_BYTES);
    lines = parseJsonl(head.text);
    note = 'From the error file.';
    if (head.truncated || lines.length > FAILURES_SHOWN) {
      note = `The first ${Math.min(lines.length, FAILURES_SHOWN)} lines of the error file; download it for all.`;
    }
  }
  lines = lines.slice(0, FAILURES_SHOWN);
  source.textContent =
    lines.length === 0 ? (isTerminal(batch) ? 'No request failed.' : 'None so far.') : note;
  if (lines.length === 0) {
    container.replaceChildren();
    return;
  }
  container.replaceChildren(
    h(
      'table',
      { class: 'failures' },
      h('caption', { class: 'visually-hidden', text: `Failed requests of ${batch.id}` }),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['custom_id', 'HTTP status', 'Code', 'Message'].map((t) => h('th', { scope: 'col', text: t })),
        ),
      ),
      h(
        'tbody',
        {},
        ...lines
          .map(failureOf)
          .map((f) =>
            h(
              'tr',
              {},
              h('td', {}, h('code', { text: f.customId })),
              h('td', { text: f.status === null ? '—' : String(f.status) }),
              h('td', {}, h('code', { text: f.code })),
              h('td', { text: f.message }),
            ),
          ),
      ),
    ),
  );
}

// ---- start ----------------------------------------------------------------------------------

function route() {
  if (!session.key()) return showSignIn();
  const match = /^\/console\/batches\/([^/]+)\/?$/.exec(location.pathname);
  if (match) return showBatch(decodeURIComponent(match[1]));
  return showList();
}

$('sign-in-form').addEventListener('submit', onSignIn);
$('sign-out').addEventListener('click', signOut);
$('load-more').addEventListener('click', loadMore);
setUpCreateForm();
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && session.key()) poller.soon();
});
route();
