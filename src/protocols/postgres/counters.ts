// PostgreSQL's own counters, kept in its sessions' stats beside the common
// ones and exported as ebpf_otel.protocol.<name> with ebpf_otel.protocol=postgres.

import type { ProtocolCounter, ProtocolStats } from '../types';

export const PG_COUNTERS: readonly ProtocolCounter[] = [
  {
    field: 'unknownStatements',
    name: 'unknown_statements',
    unit: '{execution}',
    description: 'PostgreSQL executions of a prepared statement whose Parse the agent never saw (joined mid-connection, or not kept): recorded without query text, operation from the CommandComplete tag only.',
  },
  {
    field: 'statementsOverBound',
    name: 'statements_over_bound',
    unit: '{statement}',
    description: 'PostgreSQL named prepared statements not kept because their connection already kept the most the agent keeps (1024 or 4 MiB of text): their executions count as unknown_statements.',
  },
  {
    field: 'queryTextsLost',
    name: 'query_texts_lost',
    unit: '{query}',
    description: 'PostgreSQL query texts (Query, Parse) longer than the session keeps or cut by a capture gap: the call is recorded without query text.',
  },
  {
    field: 'executesSkipped',
    name: 'executes_skipped',
    unit: '{execution}',
    description: 'PostgreSQL Executes the server skipped after an earlier error in the same extended-query batch (up to Sync): not executed, not recorded.',
  },
  {
    field: 'errorsWithoutRequest',
    name: 'errors_without_request',
    unit: '{error}',
    description: 'PostgreSQL ErrorResponses no recorded call owns (a Parse or Bind failing in a batch without Execute, a failure at Sync, a FATAL between calls).',
  },
  {
    field: 'requestsBeforeSync',
    name: 'requests_before_sync',
    unit: '{request}',
    description: 'PostgreSQL queries and executions seen before the session could pair requests with responses for certain (joined mid-connection, after a loss): not recorded.',
  },
  {
    field: 'requestsDropped',
    name: 'requests_dropped',
    unit: '{request}',
    description: 'PostgreSQL calls in flight when the session lost the pairing of requests and responses (an unexpected response, a capture gap over a message boundary): dropped, never recorded with a guessed outcome.',
  },
  {
    field: 'responsesCut',
    name: 'responses_cut',
    unit: '{response}',
    description: 'PostgreSQL responses partly lost to a capture gap (a large result read in pieces larger than the capture bound) and ended by their ReadyForQuery: recorded, returned rows from the CommandComplete tag.',
  },
  {
    field: 'notices',
    name: 'notices',
    unit: '{notice}',
    description: 'PostgreSQL NoticeResponses (warnings and notices, not errors).',
  },
  {
    field: 'notifications',
    name: 'notifications',
    unit: '{notification}',
    description: 'PostgreSQL NotificationResponses (LISTEN/NOTIFY), which arrive between responses.',
  },
  {
    field: 'cancelRequests',
    name: 'cancel_requests',
    unit: '{request}',
    description: 'PostgreSQL CancelRequest connections (a client asking the server to cancel a query running on another connection): counted, not recorded.',
  },
  {
    field: 'sslRequests',
    name: 'ssl_requests',
    unit: '{request}',
    description: 'PostgreSQL SSLRequest and GSSENCRequest messages; an accepted one hands the connection to TLS (its plaintext restarts detection when the TLS library is probed).',
  },
  {
    field: 'startupErrors',
    name: 'startup_errors',
    unit: '{error}',
    description: 'PostgreSQL connections refused during startup or authentication (an ErrorResponse before the first ReadyForQuery): counted, not recorded.',
  },
  {
    field: 'functionCalls',
    name: 'function_calls',
    unit: '{call}',
    description: 'PostgreSQL FunctionCall messages (the legacy fast-path interface): paired, not recorded.',
  },
];

/** The stats of a PostgreSQL session: the common counters and its own. */
export type PgStats = ProtocolStats & {
  unknownStatements: number;
  statementsOverBound: number;
  queryTextsLost: number;
  executesSkipped: number;
  errorsWithoutRequest: number;
  requestsBeforeSync: number;
  requestsDropped: number;
  responsesCut: number;
  notices: number;
  notifications: number;
  cancelRequests: number;
  sslRequests: number;
  startupErrors: number;
  functionCalls: number;
};
