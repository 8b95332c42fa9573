// The protocols the agent knows, in detection order. Adding a protocol is a
// folder under src/protocols/ and one line here.

import { http1Protocol } from './http1';
import type { ProtocolDefinition } from './types';

export const PROTOCOLS: readonly ProtocolDefinition[] = [http1Protocol];

/**
 * The protocols to run (all when `ids` is undefined), each self-checked: a
 * protocol whose outside files changed stops the agent here, at start.
 */
export function protocolsById(ids: readonly string[] | undefined): ProtocolDefinition[] {
  const unknown = (ids ?? []).filter((id) => !PROTOCOLS.some((p) => p.id === id));
  if (unknown.length > 0) {
    throw new Error(`unknown protocol ${unknown.join(', ')} (known: ${PROTOCOLS.map((p) => p.id).join(', ')})`);
  }
  const selected = ids === undefined ? [...PROTOCOLS] : PROTOCOLS.filter((p) => ids.includes(p.id));
  for (const p of selected) p.selfCheck?.();
  return selected;
}
