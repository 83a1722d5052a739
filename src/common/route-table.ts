import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import type { DiscoveryService, MetadataScanner } from '@nestjs/core';

export interface Route {
  method: string;
  /** As declared, e.g. `v1/files/:id/content`. */
  path: string;
}

const segments = (path: string): string[] =>
  path
    .toLowerCase()
    .split('/')
    .filter((s) => s !== '');

/**
 * The API's routes, to tell a wrong method on a known path (405 with Allow) from an unknown
 * path (404). Matching follows Express's defaults: case-insensitive, trailing slash optional,
 * `:param` matching exactly one non-empty segment.
 */
export class RouteTable {
  private readonly routes: { method: string; segments: string[] }[];

  constructor(routes: Route[]) {
    this.routes = routes.map((r) => ({ method: r.method.toUpperCase(), segments: segments(r.path) }));
  }

  /** Methods served at `path`, HEAD included wherever GET is (Express answers it); empty when none. */
  allowedMethods(path: string): string[] {
    const wanted = segments(path);
    const methods = new Set<string>();
    for (const route of this.routes) {
      if (route.segments.length !== wanted.length) continue;
      if (route.segments.every((s, i) => s.startsWith(':') || s === wanted[i])) {
        methods.add(route.method);
        if (route.method === 'GET') methods.add('HEAD');
      }
    }
    return [...methods].sort();
  }
}

/** Every route of the application's controllers, read from Nest's decorator metadata. */
export function discoverRoutes(discovery: DiscoveryService, scanner: MetadataScanner): Route[] {
  const routes: Route[] = [];
  for (const wrapper of discovery.getControllers()) {
    const { instance, metatype } = wrapper;
    if (!instance || !metatype) continue;
    const base = String(Reflect.getMetadata(PATH_METADATA, metatype) ?? '');
    const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const handler = prototype[name] as object;
      const path: unknown = Reflect.getMetadata(PATH_METADATA, handler);
      const method: unknown = Reflect.getMetadata(METHOD_METADATA, handler);
      if (typeof path !== 'string' || typeof method !== 'number') continue;
      routes.push({ method: RequestMethod[method], path: `${base}/${path}` });
    }
  }
  return routes;
}
