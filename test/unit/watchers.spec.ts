import { Watchers } from '../../src/common/watchers';

describe('Watchers', () => {
  it('runs every watch once, in the order added, and none after', () => {
    const ran: string[] = [];
    const w = new Watchers();
    w.add(() => ran.push('a'));
    w.add(() => ran.push('b'));
    w.fire();
    w.fire();
    expect(ran).toEqual(['a', 'b']);
  });

  it('skips a stopped watch, also one stopped by an earlier watch during fire()', () => {
    const ran: string[] = [];
    const w = new Watchers();
    const stopA = w.add(() => ran.push('a'));
    w.add(() => {
      ran.push('b');
      stopC();
    });
    const stopC = w.add(() => ran.push('c'));
    w.add(() => ran.push('d'));
    stopA();
    w.fire();
    expect(ran).toEqual(['b', 'd']);
  });

  it('lets the same function watch twice, each stopped on its own', () => {
    let runs = 0;
    const fn = () => runs++;
    const w = new Watchers();
    const first = w.add(fn);
    w.add(fn);
    first();
    w.fire();
    expect(runs).toBe(1);
  });

  it('calls onEmpty when the last waiting watch stops, not when one fired is stopped', () => {
    let empty = 0;
    const w = new Watchers(() => empty++);
    const a = w.add(() => undefined);
    const b = w.add(() => undefined);
    a();
    expect(empty).toBe(0);
    b();
    b();
    expect(empty).toBe(1);

    const c = w.add(() => undefined);
    w.fire();
    c();
    expect(empty).toBe(1);
  });
});
