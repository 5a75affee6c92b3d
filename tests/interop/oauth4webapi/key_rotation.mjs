// A signing-key rotation seen by a resource server that verifies JWT access tokens with
// validateJwtAccessToken against jwks_uri (RFC 9068 §4). Three runs, each with a fresh
// discovery (so a fresh JWKS, as a verifier whose cache expired would have):
// - "issue": a code flow gives a token signed by the active key; it validates.
// - "rotated": after `grantly keys rotate`, the old token still validates (its key is still in
//   the JWKS, beside the new one) and still opens the API.
// - "signing": a refresh gives a token signed by the new key; both validate and open the API.

import { oauth, config, insecure, run, discover, authorize, exchangeCode, refresh, described, callApi, peek, apiUrl } from './lib.mjs'

async function validate(as, accessToken) {
  const request = new Request(apiUrl(), { headers: { authorization: `Bearer ${accessToken}` } })
  const claims = await oauth.validateJwtAccessToken(as, request, config.audience, insecure)
  const api = await callApi(accessToken)
  return { kid: peek(accessToken).header.kid, jti: claims.jti, exp: claims.exp, api_status: api.status }
}

run(async () => {
  const as = await discover()
  const client = { client_id: config.client_id, token_endpoint_auth_method: 'client_secret_basic' }
  const clientAuth = oauth.ClientSecretBasic(config.client_secret)
  const jwks = await (await fetch(as.jwks_uri)).json()
  const published = jwks.keys.map((k) => k.kid)

  if (config.phase === 'issue') {
    const tokens = await exchangeCode(as, client, clientAuth, await authorize(as, client))
    return {
      published,
      token: described(tokens),
      old: await validate(as, tokens.access_token),
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
    }
  }
  if (config.phase === 'rotated') {
    return { published, old: await validate(as, config.access_token) }
  }
  const tokens = await refresh(as, client, clientAuth, config.refresh_token)
  return {
    published,
    token: described(tokens),
    new: await validate(as, tokens.access_token),
    old: await validate(as, config.access_token),
  }
})
