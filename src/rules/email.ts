// R2 personal-use check: email normalization.

/**
 * Domains whose mailboxes ignore dots and +tags like Gmail. Google Workspace domains behave the
 * same but can't be recognised from the address, so the program file can list them.
 */
export const DEFAULT_GMAIL_LIKE_DOMAINS: readonly string[] = ['gmail.com', 'googlemail.com'];

/**
 * Lower-cases; drops "+tag" from every local part; for Gmail-like domains also drops dots and
 * folds googlemail.com into gmail.com (same mailbox). Returns null for something that isn't an address.
 */
export function normalizeEmail(email: string, gmailLikeDomains: readonly string[] = DEFAULT_GMAIL_LIKE_DOMAINS): string | null {
  const trimmed = email.trim().toLowerCase();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0 || at === trimmed.length - 1) return null;
  let local = trimmed.slice(0, at);
  let domain = trimmed.slice(at + 1);
  const plus = local.indexOf('+');
  if (plus >= 0) local = local.slice(0, plus);
  if (gmailLikeDomains.some((d) => d.toLowerCase() === domain)) {
    local = local.replaceAll('.', '');
    if (domain === 'googlemail.com') domain = 'gmail.com';
  }
  if (local.length === 0) return null;
  return `${local}@${domain}`;
}

/** The shared normalized mailbox when any pair of addresses names the same one, else null. */
export function matchingMailbox(a: readonly string[], b: readonly string[], gmailLikeDomains?: readonly string[]): string | null {
  const left = new Set<string>();
  for (const e of a) {
    const n = normalizeEmail(e, gmailLikeDomains);
    if (n) left.add(n);
  }
  for (const e of b) {
    const n = normalizeEmail(e, gmailLikeDomains);
    if (n && left.has(n)) return n;
  }
  return null;
}
