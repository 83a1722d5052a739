import { RouteTable } from '../../src/common/route-table';

describe('RouteTable', () => {
  const table = new RouteTable([
    { method: 'GET', path: 'v1/files' },
    { method: 'POST', path: 'v1/files' },
    { method: 'GET', path: 'v1/files/:id' },
    { method: 'DELETE', path: 'v1/files/:id' },
    { method: 'GET', path: 'v1/files/:id/content' },
    { method: 'POST', path: 'v1/batches/:id/cancel' },
  ]);

  it.each([
    ['/v1/files', ['GET', 'HEAD', 'POST']],
    ['/v1/files/', ['GET', 'HEAD', 'POST']],
    ['/V1/Files', ['GET', 'HEAD', 'POST']],
    ['/v1/files/file-abc', ['DELETE', 'GET', 'HEAD']],
    ['/v1/files/file-abc/content', ['GET', 'HEAD']],
    ['/v1/batches/b/cancel', ['POST']],
    ['/v1/batches/b', []],
    ['/v1/files/a/b/c', []],
    ['/', []],
    ['*', []],
  ])('%s serves %j', (path, methods) => {
    expect(table.allowedMethods(path)).toEqual(methods);
  });
});
