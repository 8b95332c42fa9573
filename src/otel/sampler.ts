// Head sampling as configured by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG.
// The correlate layer takes the decision once per trace; this module only
// parses the configuration and decides for a trace id.
//
// The ratio decision is the one the specification defines for its
// ProbabilitySampler, which replaces the unspecified TraceIdRatioBased
// algorithm (trace/sdk.md, tracestate-probability-sampling.md): the rightmost
// 7 bytes of the trace id are the randomness R (W3C Trace Context level 2),
// the ratio gives the rejection threshold T = (1 - ratio) * 2^56, and a trace
// is sampled when R >= T. It meets the TraceIdRatioBased requirements
// (deterministic; a trace sampled at some ratio is sampled at every higher
// ratio) and agrees with other SDKs' ProbabilitySampler and the collector's
// probabilistic sampler on the same trace id.

export type SamplerKind =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export const SAMPLER_KINDS: readonly SamplerKind[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

export interface Sampler {
  readonly kind: SamplerKind;
  /** Ratio for a root (or, without parent-based, every) trace: 1 for always_on, 0 for always_off. */
  readonly ratio: number;
  /** A trace that arrives with a context follows the caller's sampled flag. */
  readonly parentBased: boolean;
}

export const DEFAULT_SAMPLER: Sampler = { kind: 'parentbased_always_on', ratio: 1, parentBased: true };

const TWO_56 = 2n ** 56n;

/** Rejection threshold for a ratio in [0, 1]: 0 samples everything, 2^56 nothing. */
export function rejectionThreshold(ratio: number): bigint {
  if (!(ratio > 0)) return TWO_56; // also NaN
  if (ratio >= 1) return 0n;
  // ratio * 2^56 is exact in a double (a power-of-two scaling); round to an integer count.
  return TWO_56 - BigInt(Math.round(ratio * 2 ** 56));
}

/** The randomness value of a trace id: its rightmost 56 bits. */
export function traceRandomness(traceId: string): bigint {
  return BigInt('0x' + traceId.slice(-14));
}

/** Whether a trace id is sampled at `ratio` (see the header for the algorithm). */
export function sampleTraceId(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (!(ratio > 0) || !/^[0-9a-f]{32}$/i.test(traceId)) return false;
  return traceRandomness(traceId) >= rejectionThreshold(ratio);
}

/**
 * The decision for a trace. `parentSampled` is the sampled flag of the context
 * the trace arrived with (traceparent), undefined for a trace that starts here.
 */
export function shouldSample(sampler: Sampler, traceId: string, parentSampled?: boolean): boolean {
  if (sampler.parentBased && parentSampled !== undefined) return parentSampled;
  return sampleTraceId(traceId, sampler.ratio);
}

/**
 * Parses OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. Unknown or invalid
 * values fall back to the specification's defaults, with a warning.
 */
export function parseSampler(name: string | undefined, arg: string | undefined, warnings: string[] = []): Sampler {
  const kind = (name ?? '').trim().toLowerCase();
  if (kind === '') return DEFAULT_SAMPLER;
  if (!(SAMPLER_KINDS as readonly string[]).includes(kind)) {
    warnings.push(`OTEL_TRACES_SAMPLER=${name} is not supported (use one of ${SAMPLER_KINDS.join(', ')}); using parentbased_always_on`);
    return DEFAULT_SAMPLER;
  }
  const k = kind as SamplerKind;
  const parentBased = k.startsWith('parentbased_');
  if (k === 'always_on' || k === 'parentbased_always_on') return { kind: k, ratio: 1, parentBased };
  if (k === 'always_off' || k === 'parentbased_always_off') return { kind: k, ratio: 0, parentBased };
  let ratio = 1;
  const raw = arg?.trim();
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (Number.isFinite(n) && n >= 0 && n <= 1) ratio = n;
    else warnings.push(`OTEL_TRACES_SAMPLER_ARG=${arg} is not a ratio in [0, 1]; using 1`);
  }
  return { kind: k, ratio, parentBased };
}
