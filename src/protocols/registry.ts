// The protocols the agent knows, in detection order. Adding a protocol is a
// folder under src/protocols/ and one line here: its detection, sessions,
// configuration section, flags and counters come with it (ProtocolDefinition).
// Everything that takes a registry (the agent, the configuration) defaults
// to this one; tests pass their own list.

import { http1Protocol } from './http1';
import { http2Protocol } from './http2';
import { mysqlProtocol } from './mysql';
import { postgresProtocol } from './postgres';
import { redisProtocol } from './redis';
import { tlsProtocol } from './tls';
import type { ProtocolDefinition } from './types';

// TLS first: ciphertext is never offered to a parser that could misread it.
// HTTP/2 before HTTP/1: its client preface starts like a request line.
export const PROTOCOLS: readonly ProtocolDefinition[] = [tlsProtocol, http2Protocol, http1Protocol, postgresProtocol, mysqlProtocol, redisProtocol];

/**
 * The protocols of `registry` named in `ids` (all of them when undefined), in
 * registry order, each self-checked: a protocol whose outside files changed
 * stops the agent here, at start.
 */
export function protocolsById(ids: readonly string[] | undefined, registry: readonly ProtocolDefinition[] = PROTOCOLS): ProtocolDefinition[] {
  const unknown = (ids ?? []).filter((id) => !registry.some((p) => p.id === id));
  if (unknown.length > 0) {
    throw new Error(`unknown protocol ${unknown.join(', ')} (known: ${registry.map((p) => p.id).join(', ')})`);
  }
  const selected = ids === undefined ? [...registry] : registry.filter((p) => ids.includes(p.id));
  for (const p of selected) p.selfCheck?.();
  return selected;
}
