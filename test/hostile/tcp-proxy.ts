import { createServer, connect, Server, Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a dependency (MinIO), so a test can make it fail for one
 * API process of its own: refuse connections as if it were down, or cut connections that
 * carry more than a few bytes, as if it died mid-upload. The shared stack is never touched.
 */
export class TcpProxy {
  mode: 'pass' | 'down' | 'cut-large' = 'pass';
  /** In 'cut-large': bytes a connection may send towards the target before it is cut. */
  cutAfterBytes = 1024 * 1024;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as { port: number }).port;
  }

  /** Cuts every open connection (pooled keep-alive sockets included). */
  cutAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.mode === 'down') {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(client).add(upstream);
    const forget = () => {
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (this.mode === 'cut-large' && sent > this.cutAfterBytes) forget();
      else if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.pipe(client);
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
  }
}
