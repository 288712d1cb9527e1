/** Storage form of an e-mail (trimmed, lower-case). Self-referral matching applies the full R2 rules. */
export function lowerEmail(email: string | null | undefined): string | null {
  const e = email?.trim().toLowerCase();
  return e ? e : null;
}
