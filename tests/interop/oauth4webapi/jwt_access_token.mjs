// JWT access tokens (RFC 9068): after a code flow for an application whose tokens are JWTs, a
// resource server's check, validateJwtAccessToken, of the request carrying the token: typ
// at+jwt, the signature by a key of jwks_uri, iss, exp, the audience ({issuer}/api when no
// resource was asked, config.audience), the required claims. With config.dpop, the token is
// DPoP-bound and the request checked is the one the library sent to the API, proof included
// (RFC 9449 §7: cnf.jkt is the key that signed the proof). A resource server expecting another
// audience must refuse it (RFC 9068 §4).

import { oauth, config, insecure, run, discover, authorize, exchangeCode, described, callApi, peek, apiUrl, lastRequestTo } from './lib.mjs'

run(async () => {
  const as = await discover()
  const client = { client_id: config.client_id, token_endpoint_auth_method: 'client_secret_basic' }
  const clientAuth = oauth.ClientSecretBasic(config.client_secret)
  const DPoP = config.dpop ? oauth.DPoP(client, await oauth.generateKeyPair('ES256')) : undefined

  const tokens = await exchangeCode(as, client, clientAuth, await authorize(as, client), { DPoP })
  const api = await callApi(tokens.access_token, { DPoP })

  // The request as the API got it: the token, and the proof when bound.
  const request = DPoP
    ? lastRequestTo(apiUrl())
    : new Request(apiUrl(), { headers: { authorization: `Bearer ${tokens.access_token}` } })
  const claims = await oauth.validateJwtAccessToken(as, request, config.audience, {
    requireDPoP: Boolean(DPoP),
    ...insecure,
  })

  let otherAudience = { refused: false }
  try {
    await oauth.validateJwtAccessToken(as, request, config.other_audience, insecure)
  } catch (error) {
    otherAudience = { refused: true, code: error.code, message: error.message }
  }

  const jwks = await (await fetch(as.jwks_uri)).json()
  return {
    jwks_uri: as.jwks_uri,
    published_kids: jwks.keys.map((k) => k.kid),
    token: described(tokens),
    header: peek(tokens.access_token).header,
    claims,
    jkt: DPoP ? await DPoP.calculateThumbprint() : null,
    api,
    other_audience: otherAudience,
  }
})
