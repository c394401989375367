import { z } from 'zod';

/**
 * The manifest's `endUsers` and `tiers` sections: which token issuers the
 * server trusts, which workloads may act for end users, which verified
 * claims the policy sees, and which model routes (and quotas) each tier has.
 * Validated as strictly as the rest of the manifest.
 */

export const TOKEN_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];

const JwksSchema = z
  .strictObject({
    file: z.string().min(1).optional(),
    url: z.string().min(1).optional(),
    refreshSeconds: z.number().int().min(10).max(86_400).optional(),
    maxStaleSeconds: z.number().int().min(0).max(604_800).optional(),
  })
  .superRefine((j, ctx) => {
    if ((j.file === undefined) === (j.url === undefined)) ctx.addIssue({ code: 'custom', message: 'give exactly one of "file" or "url"' });
    else if (j.file !== undefined && (j.refreshSeconds !== undefined || j.maxStaleSeconds !== undefined)) {
      ctx.addIssue({ code: 'custom', message: '"refreshSeconds" and "maxStaleSeconds" go with "url"; a JWKS file is reloaded with the manifest' });
    }
  });

const IssuerSchema = z.strictObject({
  issuer: z.string().min(1),
  audiences: z.array(z.string().min(1)).min(1),
  algorithms: z.array(z.enum(TOKEN_ALGORITHMS)).min(1).optional(),
  jwks: JwksSchema,
});

const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;
const claimName = z.string().regex(CLAIM_NAME, 'bad claim name: use letters, digits, "_", ".", ":" and "-", starting with a letter or "_"');

export const EndUsersSchema = z.strictObject({
  tokenHeader: z.string().regex(/^[a-z0-9-]{1,64}$/, 'a lower-case header name').optional(),
  delegates: z.array(z.string()).min(1),
  clockSkewSeconds: z.number().int().min(0).max(300).optional(),
  claims: z
    .strictObject({ subject: claimName.optional(), tenant: claimName.optional(), tier: claimName.optional(), scopes: claimName.optional() })
    .optional(),
  issuers: z.array(IssuerSchema).min(1),
});

const LimitSchema = z.strictObject({ perSecond: z.number().int().min(1).max(1_000_000), burst: z.number().int().min(1).max(1_000_000) });

export const TiersSchema = z.record(
  z.string().regex(/^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$/, 'use lower-case letters, digits, "_" and "-"'),
  z.strictObject({ paths: z.array(z.string()).min(1), rateLimit: LimitSchema.optional() }),
);

export type EndUsersSection = z.infer<typeof EndUsersSchema>;
export type TiersSection = z.infer<typeof TiersSchema>;

/** What the server needs to verify tokens, as compiled from the manifest (file paths still relative to it). */
type JwksSection = z.infer<typeof JwksSchema>;

/** The compiled form of one issuer's key source. */
export function compileJwks(j: JwksSection): { file: string } | { url: string; refresh_seconds: number; max_stale_seconds: number } {
  if (j.file !== undefined) return { file: j.file };
  return { url: j.url!, refresh_seconds: j.refreshSeconds ?? DEFAULT_JWKS_REFRESH_SECONDS, max_stale_seconds: j.maxStaleSeconds ?? DEFAULT_JWKS_MAX_STALE_SECONDS };
}

export interface EndUsersConfig {
  token_header: string;
  delegates: { exact: Record<string, true>; prefixes: string[] };
  clock_skew_seconds: number;
  claims: { subject: string; tenant: string | null; tier: string | null; scopes: string | null };
  issuers: Array<{
    issuer: string;
    audiences: string[];
    algorithms: TokenAlgorithm[];
    jwks: { file: string } | { url: string; refresh_seconds: number; max_stale_seconds: number };
  }>;
}

export const DEFAULT_TOKEN_HEADER = 'authorization';
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
export const DEFAULT_JWKS_REFRESH_SECONDS = 300;
export const DEFAULT_JWKS_MAX_STALE_SECONDS = 3600;
