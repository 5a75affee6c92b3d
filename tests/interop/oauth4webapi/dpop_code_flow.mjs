// A public client's DPoP-bound authorization-code flow (RFC 9449 with RFC 7636), against a
// server that demands its nonces: the code exchange, a refresh and an API call each carry a
// proof, each retried once with the server's nonce when it answers use_dpop_nonce (§8, §9).
// Then the bound access token sent as a Bearer token (§7.2) and the bound refresh token
// presented with another key's proof (§5: public clients' refresh tokens are bound) must be
// refused.

import { oauth, config, run, discover, authorize, exchangeCode, refresh, described, callApi, callApiAsBearer, nonceRetries, refusal } from './lib.mjs'

run(async () => {
  const as = await discover()
  const client = { client_id: config.client_id, token_endpoint_auth_method: 'none' }
  const clientAuth = oauth.None()
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))

  const tokens = await exchangeCode(as, client, clientAuth, await authorize(as, client), { DPoP })
  const refreshed = await refresh(as, client, clientAuth, tokens.refresh_token, { DPoP })
  const api = await callApi(refreshed.access_token, { DPoP })

  // The same token without its proof, as a plain Bearer token (RFC 9449 §7.2).
  const asBearer = await callApiAsBearer(refreshed.access_token)

  // The bound refresh token with a proof by another key (RFC 9449 §5).
  const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
  let stolenRefresh = { refused: false }
  try {
    await refresh(as, client, clientAuth, refreshed.refresh_token, { DPoP: thief, step: 'stolen_refresh' })
  } catch (error) {
    stolenRefresh = await refusal(error)
  }

  return {
    dpop_signing_alg_values_supported: as.dpop_signing_alg_values_supported ?? null,
    token: described(tokens),
    refreshed: {
      ...described(refreshed),
      new_refresh_token: refreshed.refresh_token !== tokens.refresh_token,
      new_access_token: refreshed.access_token !== tokens.access_token,
    },
    api,
    as_bearer: asBearer,
    stolen_refresh: stolenRefresh,
    nonce_retries: nonceRetries,
  }
})
