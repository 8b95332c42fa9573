// The part of node-postgres (`pg`, a devDependency without its own types;
// @types/pg is not installed) the tests use.

declare module 'pg' {
  export interface QueryConfig {
    readonly name?: string;
    readonly text: string;
    readonly values?: readonly unknown[];
  }
  export interface QueryResult {
    readonly command: string;
    readonly rowCount: number | null;
    readonly rows: Record<string, unknown>[];
  }
  export interface ClientConfig {
    readonly host?: string;
    readonly port?: number;
    readonly user?: string;
    readonly password?: string;
    readonly database?: string;
    readonly ssl?: boolean | { readonly rejectUnauthorized?: boolean };
  }
  export class Client {
    constructor(config?: ClientConfig);
    connect(): Promise<void>;
    query(text: string | QueryConfig, values?: readonly unknown[]): Promise<QueryResult>;
    end(): Promise<void>;
  }
}
