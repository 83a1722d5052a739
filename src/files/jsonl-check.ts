/**
 * Decides, from the first bytes of an upload, whether it is evidently not JSONL: its first
 * non-blank line must parse as a JSON object. It sees each chunk as it streams past and holds
 * at most FIRST_LINE_LIMIT bytes; the full line-by-line validation happens when a batch runs.
 */

/** `undecided` until the first line is complete (or the stream ends, see `finish`). */
export type JsonlVerdict = 'undecided' | 'jsonl' | 'not_jsonl' | 'empty';

const FIRST_LINE_LIMIT = 1024 * 1024;
const NEWLINE = 0x0a;
const BOM = '\ufeff';

export class FirstLineCheck {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private atStart = true;
  verdict: JsonlVerdict = 'undecided';

  observe(chunk: Buffer): void {
    if (this.verdict !== 'undecided') return;
    let rest = chunk;
    let newline = rest.indexOf(NEWLINE);
    while (newline !== -1) {
      const line = this.take(rest.subarray(0, newline));
      rest = rest.subarray(newline + 1);
      if (line.trim() !== '') {
        this.verdict = isJsonObject(line) ? 'jsonl' : 'not_jsonl';
        this.held = [];
        return;
      }
      newline = rest.indexOf(NEWLINE);
    }
    this.held.push(rest);
    this.heldBytes += rest.length;
    if (this.heldBytes > FIRST_LINE_LIMIT) {
      // A first line this long is rare but legal (say, an inlined image). Decide on its
      // opening character rather than hold more of it.
      this.verdict = this.take(Buffer.alloc(0)).trimStart().startsWith('{') ? 'jsonl' : 'not_jsonl';
      this.held = [];
    }
  }

  /** The verdict once the whole upload has been seen. */
  finish(): JsonlVerdict {
    if (this.verdict === 'undecided') {
      const last = this.take(Buffer.alloc(0));
      this.verdict = last.trim() === '' ? 'empty' : isJsonObject(last) ? 'jsonl' : 'not_jsonl';
    }
    return this.verdict;
  }

  /** The held bytes plus `tail` as text, emptying the buffer. */
  private take(tail: Buffer): string {
    let text = Buffer.concat([...this.held, tail]).toString('utf8');
    this.held = [];
    this.heldBytes = 0;
    if (this.atStart && text.startsWith(BOM)) text = text.slice(1);
    this.atStart = false;
    return text;
  }
}

function isJsonObject(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}
