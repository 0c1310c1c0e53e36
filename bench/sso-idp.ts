// Child process for bench/sso-callback.ts: the IdP runs here so its CPU time is not Gatehouse's.
import { startAdversarialIdp } from '../test/helpers/adversarial-idp.js';

const idp = await startAdversarialIdp({ userFromLoginHint: true, noRequestLog: true });
process.stdout.write(JSON.stringify({ issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret }) + '\n');
process.on('SIGTERM', () => void idp.close().then(() => process.exit(0)));
