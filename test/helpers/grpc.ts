// The gRPC test programs: a grpc-js echo server and a client that runs one
// scenario on one channel (contract at the top of grpc_node.js).

import path from 'node:path';
import { startWorkload, type Workload } from './agent';
import { PROGRAMS } from './tls';

export const GRPC_NODE = path.join(PROGRAMS, 'grpc_node.js');

export type GrpcScenario = ['unary', number] | ['mix'] | ['concurrent', number] | ['big'];

export function startGrpcServer(): Promise<Workload> {
  return startWorkload(process.execPath, [GRPC_NODE, 'server']);
}

/** A client that waits for go() before running the scenario against 127.0.0.1:port. */
export function startGrpcClient(port: number, scenario: GrpcScenario): Promise<Workload> {
  return startWorkload(process.execPath, [GRPC_NODE, 'client', `127.0.0.1:${port}`, ...scenario.map(String)]);
}
