// node oidc-provider 9, the peer Grantly's `make bench` measures itself against (bench/run.py
// --with-peer). One process, an in-memory store (a Map: oidc-provider's own MemoryAdapter is
// an LRU of 1000 entries, which would evict the pre-minted codes), one confidential client
// with client_secret_basic, refresh tokens that rotate on every use (as Grantly's do).
//
// Protocol with bench/run.py: the first line on stdout is {"client_id", "client_secret"} once
// listening; then each line on stdin {"kind", "count", "path"} mints `count` codes, refresh
// tokens or access tokens with the provider's own models (new provider.AuthorizationCode({...})
// .save(), each with a Grant of its own, as an authorization would), writes them to `path`, one
// a line, and answers {"ok": true}.
//
// Routes besides the provider's: GET /healthz (noop) and GET /me, which validates a Bearer
// access token with provider.AccessToken.find and its grant, then answers who it acts for (the
// counterpart of Grantly's GET /api/v1/me).

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import Provider from 'oidc-provider';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 3000);
const ISSUER = `http://${HOST}:${PORT}`;
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const CLIENT_ID = 'bench-client';
const CLIENT_SECRET = randomBytes(32).toString('base64url');
const ACCOUNT_ID = 'employee-1';
const SCOPE = 'offline_access';

const storage = new Map();
const grantKey = (id) => `grant:${id}`;

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (payload.grantId) {
      const members = storage.get(grantKey(payload.grantId)) || [];
      members.push(key);
      storage.set(grantKey(payload.grantId), members);
    }
    storage.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null });
  }

  async find(id) {
    const entry = storage.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt < Date.now()) {
      storage.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [key, entry] of storage) {
      if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid) return entry.payload;
    }
    return undefined;
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const entry = storage.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of storage.get(grantKey(grantId)) || []) storage.delete(key);
    storage.delete(grantKey(grantId));
  }
}

const provider = new Provider(ISSUER, {
  adapter: MapAdapter,
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: {
    introspection: {
      enabled: true,
      // A client may introspect its own tokens (Grantly: its own and its company's).
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    devInteractions: { enabled: false },
  },
  ttl: {
    AuthorizationCode: 600,
    AccessToken: 3600,
    RefreshToken: 7 * 24 * 3600,
    Grant: 7 * 24 * 3600,
  },
  rotateRefreshToken: () => true,
  async findAccount(_ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
});

provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/healthz') {
    ctx.body = { status: 'ok' };
    return;
  }
  if (ctx.method === 'GET' && ctx.path === '/me') {
    const match = /^Bearer (.+)$/.exec(ctx.get('authorization'));
    const token = match ? await provider.AccessToken.find(match[1]) : undefined;
    const grant = token ? await provider.Grant.find(token.grantId) : undefined;
    if (!token || token.isExpired || !grant || grant.clientId !== token.clientId) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token' };
      return;
    }
    ctx.body = {
      resource_owner_type: 'user',
      sub: token.accountId,
      scope: token.scope,
      client_id: token.clientId,
      expires_at: token.exp,
    };
    return;
  }
  await next();
});

async function newGrant() {
  const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: CLIENT_ID });
  grant.addOIDCScope(SCOPE);
  return grant.save();
}

async function mint(kind, count) {
  const client = await provider.Client.find(CLIENT_ID);
  const values = [];
  for (let i = 0; i < count; i += 1) {
    const grantId = await newGrant();
    const common = { accountId: ACCOUNT_ID, client, grantId, scope: SCOPE };
    if (kind === 'code') {
      values.push(await new provider.AuthorizationCode({
        ...common, redirectUri: REDIRECT_URI, expiresWithSession: false,
      }).save());
    } else if (kind === 'refresh_token') {
      values.push(await new provider.RefreshToken({
        ...common, gty: 'authorization_code', rotations: 0, expiresWithSession: false,
      }).save());
    } else if (kind === 'access_token') {
      values.push(await new provider.AccessToken({
        ...common, gty: 'authorization_code', expiresWithSession: false,
      }).save());
    } else {
      throw new Error(`unknown kind ${kind}`);
    }
  }
  return values;
}

provider.listen(PORT, HOST, () => {
  process.stdout.write(`${JSON.stringify({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET })}\n`);
});

const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  try {
    const { kind, count, path } = JSON.parse(line);
    writeFileSync(path, `${(await mint(kind, count)).join('\n')}\n`);
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(error) })}\n`);
  }
});
lines.on('close', () => process.exit(0));
