/** The literal the MySQL recordings and e2e tests send and that sanitized exports must never carry. */
export const SECRET = 'secret-7f3a91';
