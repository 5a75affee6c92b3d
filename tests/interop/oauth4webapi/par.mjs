// Pushed authorization requests (RFC 9126) with PKCE, by a confidential client authenticating
// with client_secret_basic: the parameters go to pushed_authorization_request_endpoint (§2.1),
// the authorization URL carries only client_id and the request_uri the server returned (§4),
// then the code is exchanged as usual and the tokens open the API.

import { oauth, config, insecure, run, discover, authorize, exchangeCode, described, callApi } from './lib.mjs'

run(async () => {
  const as = await discover()
  const client = { client_id: config.client_id, token_endpoint_auth_method: 'client_secret_basic' }
  const clientAuth = oauth.ClientSecretBasic(config.client_secret)

  const pushed = async (parameters) => {
    const response = await oauth.pushedAuthorizationRequest(as, client, clientAuth, parameters, insecure)
    return oauth.processPushedAuthorizationResponse(as, client, response)
  }
  const front = await authorize(as, client, { pushed })
  const tokens = await exchangeCode(as, client, clientAuth, front)
  const api = await callApi(tokens.access_token)

  return {
    pushed_authorization_request_endpoint: as.pushed_authorization_request_endpoint ?? null,
    pushed: front.pushedResponse,
    authorization_url: front.url,
    token: described(tokens),
    api,
  }
})
