import type { z } from 'zod';

/** One line per problem, naming the field path and what was expected: `connections.0.type: expected one of …`. */
export function formatZodIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
      return `  - ${path || '(root)'}: ${issue.message}`;
    })
    .join('\n');
}
