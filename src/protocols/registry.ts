// The protocols the agent knows, in detection order. Adding a protocol is a
// folder under src/protocols/ and one line here.

import { http1Protocol } from './http1';
import type { ProtocolDefinition } from './types';

export const PROTOCOLS: readonly ProtocolDefinition[] = [http1Protocol];

export function protocolsById(ids: readonly string[] | undefined): ProtocolDefinition[] {
  if (ids === undefined) return [...PROTOCOLS];
  const unknown = ids.filter((id) => !PROTOCOLS.some((p) => p.id === id));
  if (unknown.length > 0) {
    throw new Error(`unknown protocol ${unknown.join(', ')} (known: ${PROTOCOLS.map((p) => p.id).join(', ')})`);
  }
  return PROTOCOLS.filter((p) => ids.includes(p.id));
}
