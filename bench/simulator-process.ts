/** The simulator as a child process of the bench, on its own core, controlled over HTTP. */
import { join } from 'node:path';
import type { SimulatorStats } from '../src/simulator/server';
import { startNode, type Started } from './processes';

export interface SimulatorProcess {
  /** Origin, e.g. http://127.0.0.1:41234 */
  url: string;
  baseUrl: string;
  pid: number;
  stats(): Promise<SimulatorStats>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSimulatorProcess(flags: string[], logPath: string): Promise<SimulatorProcess> {
  const entry = join(__dirname, '..', 'src', 'simulator', 'main.js');
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SIM_')));
  const started: Started = startNode(entry, ['--host', '127.0.0.1', '--port', '0', ...flags], env, logPath);
  const match = await started
    .waitFor(/simulator listening on (\S+)/, 30_000)
    .catch(async (error: unknown) => {
      await started.stop(1000);
      throw error;
    });
  const url = match[1];
  const call = async (method: string, path: string): Promise<unknown> => {
    const response = await fetch(`${url}${path}`, { method });
    if (!response.ok) throw new Error(`simulator ${method} ${path}: HTTP ${response.status}`);
    return response.json();
  };
  return {
    url,
    baseUrl: `${url}/v1`,
    pid: started.pid,
    stats: async () => (await call('GET', '/_sim/stats')) as SimulatorStats,
    reset: async () => {
      await call('POST', '/_sim/reset');
    },
    stop: () => started.stop(5000),
  };
}
