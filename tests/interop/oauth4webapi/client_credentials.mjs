// The client credentials grant (RFC 6749 §4.4) for a confidential application: a token that
// acts for the application's company, no refresh token (§4.4.3), bound to a DPoP key when
// config.dpop (RFC 9449 §5), and refused as a Bearer token then (§7.2).

import { oauth, config, insecure, run, discover, withNonceRetry, described, callApi, callApiAsBearer, nonceRetries } from './lib.mjs'

run(async () => {
  const as = await discover()
  const client = { client_id: config.client_id, token_endpoint_auth_method: 'client_secret_basic' }
  const clientAuth = oauth.ClientSecretBasic(config.client_secret)
  const DPoP = config.dpop ? oauth.DPoP(client, await oauth.generateKeyPair('ES256')) : undefined

  const send = async () => {
    const response = await oauth.clientCredentialsGrantRequest(
      as, client, clientAuth, { scope: config.scope ?? 'read' }, { DPoP, ...insecure },
    )
    return oauth.processClientCredentialsResponse(as, client, response)
  }
  const tokens = await (DPoP ? withNonceRetry('token', send) : send())
  const api = await callApi(tokens.access_token, { DPoP })
  const asBearer = DPoP ? await callApiAsBearer(tokens.access_token) : null

  return {
    grant_types_supported: as.grant_types_supported ?? null,
    token: described(tokens),
    api,
    as_bearer: asBearer,
    nonce_retries: nonceRetries,
  }
})
