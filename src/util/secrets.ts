// Every secret value loaded from the environment is registered here so that log lines, error
// messages, reports and HTTP responses can be scrubbed of it whatever path it leaked through.
const secrets = new Set<string>();
const MIN_SECRET_LENGTH = 4;

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= MIN_SECRET_LENGTH) {
    secrets.add(value);
    // The forms the value takes on the way out: escaped inside JSON (log lines, stored summaries,
    // reports) and percent-encoded in URLs. Basic-auth headers carry base64(user:secret); those
    // encoded forms are registered separately by the clients that build them.
    const json = JSON.stringify(value).slice(1, -1);
    if (json !== value) secrets.add(json);
    const url = encodeURIComponent(value);
    if (url !== value) secrets.add(url);
  }
}

export function scrubSecrets(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another is removed whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  return out;
}

/** Deep-scrubs strings inside a JSON-like value (used for reports and stored request summaries). */
export function scrubValue<T>(value: T): T {
  if (secrets.size === 0) return value;
  return JSON.parse(scrubSecrets(JSON.stringify(value))) as T;
}

export function clearSecretsForTests(): void {
  secrets.clear();
}
