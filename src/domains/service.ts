import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Ctx } from '../context.js';
import { isUniqueViolation, type Db } from '../db/database.js';
import type { Bool } from '../db/schema.js';
import type { AuditService } from '../audit/service.js';
import { randomToken } from '../crypto/tokens.js';
import { AppError, conflict, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import type { RateLimits } from '../http/rate-limit.js';
import { newId } from '../ids.js';
import type { OrganizationService } from '../organizations/service.js';
import { createTxtLookup, DNS_TIMEOUT_MS, type TxtFailureReason, type TxtLookup } from './dns.js';
import { assertClaimable, normalizeDomain } from './normalize.js';
import {
  deleteDomain, findDomain, findDomainByName, findVerifiedDomain, insertDomain, listDomains, markDomainChecked, markDomainVerified,
  updateDomain, type DomainRow,
} from './store.js';

/** SPEC §4.7: the TXT record that proves control of a domain. */
export const CHALLENGE_LABEL = '_gatehouse-challenge';
export const CHALLENGE_PREFIX = 'gatehouse-domain-verification=';
/** Values shown in an error are capped: a name can hold many (large) TXT records. */
const MAX_FOUND = 20;
const MAX_FOUND_CHARS = 300;

export type JoinRole = 'member' | 'admin';

export interface DomainView {
  id: string;
  organizationId: string;
  domain: string;
  status: 'pending' | 'verified';
  verification: { type: 'TXT'; name: string; value: string };
  verifiedAt: string | null;
  lastCheckedAt: string | null;
  settings: { autoJoin: boolean; requireApproval: boolean; role: JoinRole };
  createdAt: string;
  updatedAt: string;
}

export function challengeFor(row: Pick<DomainRow, 'domain' | 'verification_token'>) {
  return { type: 'TXT' as const, name: `${CHALLENGE_LABEL}.${row.domain}`, value: `${CHALLENGE_PREFIX}${row.verification_token}` };
}

function view(d: DomainRow): DomainView {
  return {
    id: d.id,
    organizationId: d.organization_id,
    domain: d.domain,
    status: d.status,
    verification: challengeFor(d),
    verifiedAt: d.verified_at,
    lastCheckedAt: d.last_checked_at,
    // join_role is only ever written as member or admin (owner is refused below).
    settings: { autoJoin: d.auto_join === 1, requireApproval: d.require_approval === 1, role: d.join_role === 'admin' ? 'admin' : 'member' },
    createdAt: d.created_at,
    updatedAt: d.updated_at,
  };
}

const bool = (b: boolean): Bool => (b ? 1 : 0);

/** A TXT value as people paste it: surrounding spaces and one pair of quotes are not part of it. */
function cleanTxt(value: string): string {
  const v = value.trim();
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).trim() : v;
}

function taken(domain: string): AppError {
  return new AppError('DOMAIN_TAKEN', `${domain} is already verified by another organization`, { domain });
}

function verificationFailed(
  reason: TxtFailureReason | 'wrong_value',
  expected: ReturnType<typeof challengeFor>,
  found: string[] | null,
  dnsCode: string | null,
): AppError {
  const publish = `Publish a TXT record named ${expected.name} with the value ${expected.value}, wait for DNS to pick it up (usually minutes; up to the TTL), then verify again.`;
  const messages: Record<TxtFailureReason | 'wrong_value', string> = {
    no_record: `${expected.name} exists but has no TXT record. ${publish}`,
    nxdomain: `${expected.name} does not exist in DNS (NXDOMAIN): no TXT record is published there yet. ${publish}`,
    wrong_value: `${expected.name} has ${found?.length ?? 0} TXT record(s), none with the expected value. Found: ${(found ?? []).map((f) => JSON.stringify(f)).join(', ')}. Expected: ${JSON.stringify(expected.value)}.`,
    timeout: `The DNS lookup of ${expected.name} timed out after ${DNS_TIMEOUT_MS / 1000} s. Try again later; if it keeps failing, check the domain's name servers (or GATEHOUSE_DNS_SERVERS).`,
    dns_error: `The DNS lookup of ${expected.name} failed${dnsCode ? ` (${dnsCode})` : ''}. Try again later; if it keeps failing, check the domain's name servers (or GATEHOUSE_DNS_SERVERS).`,
  };
  return new AppError('DOMAIN_VERIFICATION_FAILED', messages[reason], {
    reason,
    expected,
    ...(found ? { found } : {}),
    ...(reason === 'dns_error' && dnsCode ? { dnsError: dnsCode } : {}),
  });
}

export function createDomainService(deps: {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'dnsServers'>;
  audit: AuditService;
  organizations: OrganizationService;
  rateLimits: RateLimits;
  /** Replace the TXT lookup (by default c-ares on config.dnsServers, or the system resolver). */
  txtLookup?: TxtLookup;
}) {
  const { db, clock } = deps;
  const lookupTxt = deps.txtLookup ?? createTxtLookup({ servers: deps.config.dnsServers });

  async function requireDomain(ctx: Ctx, organizationId: string, domainId: string): Promise<DomainRow> {
    await deps.organizations.requireAccess(ctx, organizationId, 'domains:manage');
    const row = await findDomain(db, organizationId, domainId);
    if (!row) throw notFound('Domain');
    return row;
  }

  return {
    async add(ctx: Ctx, organizationId: string, input: { domain: string }): Promise<DomainView> {
      await deps.organizations.requireAccess(ctx, organizationId, 'domains:manage');
      const domain = normalizeDomain(input.domain);
      assertClaimable(domain);
      const now = clock.now().toISOString();
      const row: DomainRow = {
        id: newId(),
        organization_id: organizationId,
        domain,
        status: 'pending',
        verification_token: randomToken(24), // 192 bits, base64url
        verified_at: null,
        last_checked_at: null,
        auto_join: 0,
        require_approval: 0,
        join_role: 'member',
        created_at: now,
        updated_at: now,
      };
      const duplicate = () => conflict(`${domain} is already listed for this organization`, { field: 'domain', domain });
      try {
        await db.transaction().execute(async (tx) => {
          const verified = await findVerifiedDomain(tx, domain);
          if (verified && verified.organization_id !== organizationId) throw taken(domain);
          if (await findDomainByName(tx, organizationId, domain)) throw duplicate();
          await insertDomain(tx, row);
          await deps.audit.record(tx, ctx, { action: 'domain.added', organizationId, target: { type: 'domain', id: row.id }, metadata: { domain } });
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw duplicate();
        throw e;
      }
      return view(row);
    },

    async list(ctx: Ctx, organizationId: string, params: PageParams): Promise<Page<DomainView>> {
      await deps.organizations.requireAccess(ctx, organizationId, 'domains:manage');
      return paginate(await listDomains(db, organizationId, params), params.limit, view);
    },

    async get(ctx: Ctx, organizationId: string, domainId: string): Promise<DomainView> {
      return view(await requireDomain(ctx, organizationId, domainId));
    },

    async remove(ctx: Ctx, organizationId: string, domainId: string): Promise<void> {
      const row = await requireDomain(ctx, organizationId, domainId);
      await db.transaction().execute(async (tx) => {
        if (!(await deleteDomain(tx, organizationId, domainId))) throw notFound('Domain');
        await deps.audit.record(tx, ctx, {
          action: 'domain.removed',
          organizationId,
          target: { type: 'domain', id: domainId },
          metadata: { domain: row.domain, status: row.status },
        });
      });
    },

    /**
     * Look up the TXT record and mark the domain verified. Race-safe: when two organizations
     * verify the same domain at once, the partial unique index lets exactly one win; the other
     * gets 409 DOMAIN_TAKEN.
     */
    async verify(ctx: Ctx, organizationId: string, domainId: string): Promise<DomainView> {
      const row = await requireDomain(ctx, organizationId, domainId);
      if (row.status === 'verified') return view(row);
      const other = await findVerifiedDomain(db, row.domain);
      if (other && other.organization_id !== organizationId) throw taken(row.domain);
      await deps.rateLimits.consume('domain-verify:organization', organizationId);

      const expected = challengeFor(row);
      const result = await lookupTxt(expected.name);
      const now = clock.now().toISOString();
      const target = { type: 'domain', id: row.id };

      const fail = async (reason: string, metadata: Record<string, unknown>) => {
        await db.transaction().execute(async (tx) => {
          await markDomainChecked(tx, row.id, now);
          await deps.audit.record(tx, ctx, { action: 'domain.verification_failed', organizationId, target, metadata: { domain: row.domain, reason, ...metadata } });
        });
      };

      if (!result.ok) {
        await fail(result.reason, result.dnsCode ? { dnsError: result.dnsCode } : {});
        throw verificationFailed(result.reason, expected, null, result.dnsCode);
      }
      if (!result.records.some((r) => cleanTxt(r) === expected.value)) {
        const found = result.records.slice(0, MAX_FOUND).map((r) => (r.length > MAX_FOUND_CHARS ? `${r.slice(0, MAX_FOUND_CHARS)}…` : r));
        await fail('wrong_value', { foundCount: result.records.length });
        throw verificationFailed('wrong_value', expected, found, null);
      }

      try {
        const updated = await db.transaction().execute(async (tx) => {
          if (!(await markDomainVerified(tx, row.id, now))) return false;
          await deps.audit.record(tx, ctx, { action: 'domain.verified', organizationId, target, metadata: { domain: row.domain } });
          return true;
        });
        // Not pending any more: verified meanwhile by a concurrent request of this organization, or removed.
        if (!updated) {
          const current = await findDomain(db, organizationId, domainId);
          if (!current) throw notFound('Domain');
          return view(current);
        }
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        await fail('domain_taken', {});
        throw taken(row.domain);
      }
      return view({ ...row, status: 'verified', verified_at: now, last_checked_at: now, updated_at: now });
    },

    async updateSettings(
      ctx: Ctx,
      organizationId: string,
      domainId: string,
      input: { autoJoin: boolean; requireApproval: boolean; role: JoinRole },
    ): Promise<DomainView> {
      const row = await requireDomain(ctx, organizationId, domainId);
      if (input.autoJoin && row.status !== 'verified') {
        throw new AppError('DOMAIN_NOT_VERIFIED', `Verify ${row.domain} before turning auto-join on: only a verified domain proves who its addresses belong to`, { domain: row.domain });
      }
      const now = clock.now().toISOString();
      const patch = { auto_join: bool(input.autoJoin), require_approval: bool(input.requireApproval), join_role: input.role, updated_at: now };
      await db.transaction().execute(async (tx) => {
        if (!(await updateDomain(tx, organizationId, domainId, patch))) throw notFound('Domain');
        await deps.audit.record(tx, ctx, {
          action: 'domain.settings_updated',
          organizationId,
          target: { type: 'domain', id: domainId },
          metadata: { domain: row.domain, from: view(row).settings, to: input },
        });
      });
      return view({ ...row, ...patch });
    },
  };
}

export type DomainService = ReturnType<typeof createDomainService>;
