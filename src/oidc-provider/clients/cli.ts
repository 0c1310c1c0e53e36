import { parseArgs } from 'node:util';
import { systemCtx } from '../../context.js';
import { AppError } from '../../http/errors.js';
import type { Services } from '../../services.js';
import type { ClientAuthMethod } from '../../db/schema.js';
import type { GrantType } from './store.js';
import type { CreateClientInput } from './validation.js';

export const CLIENTS_USAGE = `Usage:
  gatehouse clients create --name N --redirect-uri U [--redirect-uri U2 …] [--post-logout-redirect-uri U …]
                           [--backchannel-logout-uri U] [--auth-method client_secret_basic|client_secret_post|private_key_jwt|none]
                           [--jwks-uri U] [--grant-type authorization_code|refresh_token …] [--first-party]
  gatehouse clients list
  gatehouse clients delete <clientId>`;

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

interface Opened {
  services: Pick<Services, 'clients'>;
  close(): Promise<void>;
}

/**
 * `gatehouse clients …` (SPEC §8): the same service, rules and audit as the admin API, acting as
 * the system (the operator at the console). Exit codes: 0 done, 1 no such client, 2 usage or
 * validation error (each problem printed).
 */
export async function runClientsCommand(sub: string | undefined, args: string[], open: () => Promise<Opened>, io: Io = { out: console.log, err: console.error }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'post-logout-redirect-uri': { type: 'string', multiple: true },
        'backchannel-logout-uri': { type: 'string' },
        'auth-method': { type: 'string' },
        'jwks-uri': { type: 'string' },
        'grant-type': { type: 'string', multiple: true },
        'first-party': { type: 'boolean' },
      },
    });
  } catch (e) {
    io.err(`${e instanceof Error ? e.message : String(e)}\n\n${CLIENTS_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const usage = () => {
    io.err(CLIENTS_USAGE);
    return 2;
  };

  if (sub === 'create') {
    if (!values.name || !values['redirect-uri']?.length || positionals.length) return usage();
    const input: CreateClientInput = {
      name: values.name,
      redirectUris: values['redirect-uri'],
      ...(values['post-logout-redirect-uri'] ? { postLogoutRedirectUris: values['post-logout-redirect-uri'] } : {}),
      ...(values['backchannel-logout-uri'] ? { backchannelLogoutUri: values['backchannel-logout-uri'] } : {}),
      // Unchecked here on purpose: the service refuses an unknown method like any other bad value.
      ...(values['auth-method'] ? { tokenEndpointAuthMethod: values['auth-method'] as ClientAuthMethod } : {}),
      ...(values['jwks-uri'] ? { jwksUri: values['jwks-uri'] } : {}),
      ...(values['grant-type'] ? { grantTypes: values['grant-type'] as GrantType[] } : {}),
      ...(values['first-party'] ? { firstParty: true } : {}),
    };
    return withGatehouse(open, io, async ({ clients }) => {
      const c = await clients.create(systemCtx, input);
      io.out(`created client "${c.name}"`);
      io.out(`  client id:     ${c.clientId}`);
      if (c.clientSecret) {
        io.out(`  client secret: ${c.clientSecret}`);
        io.out('  (the secret is shown only now: store it; Gatehouse keeps only its SHA-256)');
      } else {
        io.out(`  client secret: none (token endpoint auth method ${c.tokenEndpointAuthMethod}${c.tokenEndpointAuthMethod === 'none' ? '; a public client, PKCE required' : ''})`);
      }
      io.out(`  auth method:   ${c.tokenEndpointAuthMethod}${c.firstParty ? ' (first party: no consent page)' : ''}`);
      for (const u of c.redirectUris) io.out(`  redirect uri:  ${u}`);
      return 0;
    });
  }

  if (sub === 'list') {
    if (positionals.length || Object.keys(values).length) return usage();
    return withGatehouse(open, io, async ({ clients }) => {
      let cursor: string | null = null;
      let n = 0;
      do {
        const page = await clients.list({ limit: 100, cursor });
        for (const c of page.items) {
          if (n++ === 0) io.out(['client id', 'auth method', 'first party', 'name', 'redirect uris'].join('\t'));
          io.out([c.clientId, c.tokenEndpointAuthMethod, c.firstParty ? 'yes' : 'no', c.name, c.redirectUris.join(' ')].join('\t'));
        }
        cursor = page.nextCursor;
      } while (cursor);
      if (n === 0) io.out('no clients');
      return 0;
    });
  }

  if (sub === 'delete') {
    const [clientId, ...extra] = positionals;
    if (!clientId || extra.length || Object.keys(values).length) return usage();
    return withGatehouse(open, io, async ({ clients }) => {
      await clients.remove(systemCtx, clientId);
      io.out(`deleted client ${clientId}`);
      return 0;
    });
  }

  return usage();
}

async function withGatehouse(open: () => Promise<Opened>, io: Io, run: (s: Pick<Services, 'clients'>) => Promise<number>): Promise<number> {
  const gh = await open();
  try {
    return await run(gh.services);
  } catch (e) {
    if (e instanceof AppError && e.code === 'VALIDATION_FAILED') {
      io.err('invalid client:');
      for (const i of (e.details?.issues ?? []) as Array<{ path: string; message: string }>) io.err(`  - ${i.path || '(input)'}: ${i.message}`);
      return 2;
    }
    if (e instanceof AppError && e.code === 'NOT_FOUND') {
      io.err(e.message);
      return 1;
    }
    throw e;
  } finally {
    await gh.close();
  }
}
