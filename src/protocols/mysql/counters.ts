// MySQL's own counters, kept in its sessions' stats beside the common ones
// and exported as ebpf_otel.protocol.<name> with ebpf_otel.protocol=mysql.

import type { ProtocolCounter, ProtocolStats } from '../types';

export const MYSQL_COUNTERS: readonly ProtocolCounter[] = [
  {
    field: 'sequenceMismatches',
    name: 'sequence_mismatches',
    unit: '{packet}',
    description: 'MySQL server packets whose sequence id was not the one the pending command expected: the commands waiting were given up (no record) and the session resynchronised.',
  },
  {
    field: 'responsesIncomplete',
    name: 'incomplete_responses',
    unit: '{response}',
    description: 'MySQL responses whose packet boundaries were lost in a capture gap (results larger than the capture bound): recorded without row counts, ended by the next command or the close.',
  },
  {
    field: 'statementsUnknown',
    name: 'unknown_statements',
    unit: '{execution}',
    description: 'MySQL prepared-statement executions whose COM_STMT_PREPARE the agent never saw (joined mid-connection, or evicted): recorded without query text.',
  },
  {
    field: 'statementsEvicted',
    name: 'evicted_statements',
    unit: '{statement}',
    description: 'MySQL prepared statements forgotten because their connection had the most statements the agent keeps (1024): later executions are recorded without query text.',
  },
  {
    field: 'localInfile',
    name: 'local_infile_transfers',
    unit: '{transfer}',
    description: 'MySQL LOAD DATA LOCAL INFILE file transfers (the file content is skipped, never read).',
  },
  {
    field: 'tlsUpgrades',
    name: 'tls_upgrades',
    unit: '{connection}',
    description: 'MySQL connections that switched to TLS (SSL request): handed back to detection, so the TLS probes\' plaintext is parsed when the library is probed.',
  },
  {
    field: 'unsupportedConnections',
    name: 'unsupported_connections',
    unit: '{connection}',
    description: 'MySQL connections left because they use what the agent does not parse: the compressed protocol, optional result-set metadata, replication streams.',
  },
  {
    field: 'loginFailures',
    name: 'login_failures',
    unit: '{connection}',
    description: 'MySQL logins the server refused (ERR during the connection phase).',
  },
  {
    field: 'pipelinedGivenUp',
    name: 'pipelined_commands_given_up',
    unit: '{command}',
    description: 'MySQL commands sent while 64 were already waiting for their responses on the connection: not followed (the session resynchronises).',
  },
  {
    field: 'queryTextTruncated',
    name: 'truncated_query_texts',
    unit: '{command}',
    description: 'MySQL statements longer than the text the agent keeps (or cut by a capture gap): their facts and query text come from the kept prefix.',
  },
];

/** The stats of a MySQL session: the common counters and MySQL's own. */
export type MysqlStats = ProtocolStats & {
  sequenceMismatches: number;
  responsesIncomplete: number;
  statementsUnknown: number;
  statementsEvicted: number;
  localInfile: number;
  tlsUpgrades: number;
  unsupportedConnections: number;
  loginFailures: number;
  pipelinedGivenUp: number;
  queryTextTruncated: number;
};
