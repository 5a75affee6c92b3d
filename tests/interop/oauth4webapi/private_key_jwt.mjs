// private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the library
// makes an ES256 key pair; pytest registers its public JWK as the application's JWK Set (the
// operator's `grantly apps create --auth-method private_key_jwt --jwks FILE`); the code
// exchange and a refresh each authenticate with a fresh signed assertion, then the API call.
// An assertion signed by another key, under the same kid, must not authenticate the client.

import { oauth, config, run, ask, discover, authorize, exchangeCode, refresh, described, callApi, wire, refusal } from './lib.mjs'

run(async () => {
  const { privateKey, publicKey } = await oauth.generateKeyPair('ES256')
  const kid = `oauth4webapi-${oauth.generateRandomState().slice(0, 12)}`
  const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid, alg: 'ES256', use: 'sig' }
  const { client_id } = await ask('register', { jwks: { keys: [jwk] } })

  const as = await discover()
  const client = { client_id, token_endpoint_auth_method: 'private_key_jwt' }
  const clientAuth = oauth.PrivateKeyJwt({ key: privateKey, kid })

  const tokens = await exchangeCode(as, client, clientAuth, await authorize(as, client))
  const refreshed = await refresh(as, client, clientAuth, tokens.refresh_token)
  const api = await callApi(refreshed.access_token)

  const impostor = oauth.PrivateKeyJwt({ key: (await oauth.generateKeyPair('ES256')).privateKey, kid })
  let otherKey = { refused: false }
  try {
    await refresh(as, client, impostor, refreshed.refresh_token, { step: 'other_key' })
  } catch (error) {
    otherKey = await refusal(error)
  }

  return {
    token_endpoint_auth_methods_supported: as.token_endpoint_auth_methods_supported ?? null,
    token_endpoint_auth_signing_alg_values_supported: as.token_endpoint_auth_signing_alg_values_supported ?? null,
    client_id,
    token: described(tokens),
    refreshed: described(refreshed),
    api,
    other_key: otherKey,
    assertions: wire.filter((e) => e.path === '/oauth/token').map((e) => e.client_assertion),
  }
})
