// What every scenario shares: its configuration, the conversation with pytest, the wire log
// and the only deviation from oauth4webapi's defaults, `allowInsecureRequests` (the issuer is
// http://127.0.0.1:PORT in the tests).
//
// The conversation (tests/interop/test_oauth4webapi.py drives it): a scenario reads one JSON
// object of configuration from argv[2]; when it needs pytest (the person at the consent page, an
// operator's command), it prints one line {"ask": KIND, ...} and reads one JSON line back on
// stdin; it ends with one line {"result": {...}} and exit code 0, or {"error": {...}} and 1.
// oauth4webapi is used unchanged: no option but allowInsecureRequests, no customFetch; the
// global fetch it calls is wrapped below only to watch the wire and keep it on loopback.

import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'

export { oauth }

export const config = JSON.parse(process.argv[2] ?? '{}')

// Every request option the scenarios pass: plain http to the loopback issuer is allowed.
export const insecure = { [oauth.allowInsecureRequests]: true }

// A scenario that hangs (a missing answer, a server that never replies) fails on its own.
setTimeout(() => fail(new Error('the scenario did not finish in time')), config.timeout_ms ?? 30000).unref()

// The wire, as seen from outside the library: the global fetch oauth4webapi calls is wrapped to
// refuse anything but loopback (tests may contact no other address) and to note each exchange.
export const wire = []
const lastSent = new Map()
const realFetch = globalThis.fetch
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost'])
globalThis.fetch = async (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input))
  if (!LOOPBACK.has(url.hostname)) {
    throw new Error(`refused to contact ${url.origin}: tests only talk to loopback`)
  }
  const headers = new Headers(input instanceof Request ? input.headers : init?.headers)
  lastSent.set(`${url.origin}${url.pathname}`, { method: init?.method ?? 'GET', headers })
  let response = await realFetch(input, init)
  const entry = {
    method: (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase(),
    path: url.pathname,
    status: response.status,
    authorization: headers.get('authorization')?.split(' ')[0] ?? null,
    dpop_proof: headers.has('dpop'),
    client_assertion: String(init?.body ?? '').includes('client_assertion='),
    dpop_nonce: response.headers.get('dpop-nonce'),
    www_authenticate: response.headers.get('www-authenticate'),
  }
  if (url.pathname.startsWith('/oauth/') && response.headers.get('content-type')?.includes('json')) {
    // The endpoint's own words (oauth4webapi lowercases token_type before a scenario sees it):
    // read here, and handed on as the same status, headers and bytes (a clone's tee would hold
    // the library's cancel of the body it read).
    const text = await response.text()
    const { status, statusText, headers: responseHeaders } = response
    response = new Response(text, { status, statusText, headers: responseHeaders })
    let body = null
    try {
      body = JSON.parse(text)
    } catch {}
    if (body && typeof body === 'object' && !Array.isArray(body) && !('keys' in body)) {
      entry.body = Object.fromEntries(
        Object.entries(body).map(([k, v]) => [k, /token$/.test(k) ? `<${String(v).length} chars>` : v]),
      )
    }
  }
  wire.push(entry)
  return response
}

/** The last request sent to `url` (its method and headers): what a resource server got. */
export function lastRequestTo(url) {
  const sent = lastSent.get(`${url.origin}${url.pathname}`)
  if (!sent) throw new Error(`nothing was sent to ${url.href}`)
  return new Request(url, { method: sent.method, headers: sent.headers })
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

/** Ask pytest for something (the person's answer, an operator's command); its JSON reply. */
export async function ask(kind, payload = {}) {
  process.stdout.write(JSON.stringify({ ask: kind, ...payload }) + '\n')
  const { value, done } = await lines.next()
  if (done) throw new Error(`no answer from pytest to ${kind}`)
  return JSON.parse(value)
}

export function finish(result) {
  process.stdout.write(JSON.stringify({ result, wire }) + '\n')
  process.exit(0)
}

export function fail(error) {
  const described = {
    name: error?.name,
    message: error?.message,
    code: error?.code,
    error: error?.error,
    error_description: error?.error_description,
    status: error?.status,
    cause: error?.cause,
  }
  process.stdout.write(JSON.stringify({ error: described, wire }, replacer) + '\n')
  process.exit(1)
}

function replacer(key, value) {
  if (value instanceof Headers) return Object.fromEntries(value.entries())
  if (value instanceof URL) return value.href
  if (value instanceof Response) return { status: value.status, url: value.url }
  return value
}

/** Run a scenario: its result is printed, any error too (and the exit code says which). */
export function run(scenario) {
  scenario().then(finish, fail)
}

/** RFC 8414 discovery at /.well-known/oauth-authorization-server, checked by the library. */
export async function discover(issuer = config.issuer) {
  const issuerUrl = new URL(issuer)
  const response = await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...insecure })
  return oauth.processDiscoveryResponse(issuerUrl, response)
}

/** How many requests had to be sent again with the server's fresh DPoP nonce, per step. */
export const nonceRetries = {}

/**
 * RFC 9449 §8 and §9: send, and if the server answers use_dpop_nonce (the DPoP handle has kept
 * the nonce it sent), send once more. `send` makes the request and processes the response.
 */
export async function withNonceRetry(step, send) {
  nonceRetries[step] ??= 0
  try {
    return await send()
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error
    nonceRetries[step] += 1
    return send()
  }
}

/**
 * The authorization-code flow's front channel (RFC 6749 §4.1, RFC 7636, RFC 9207): the
 * library makes PKCE and the state, pytest plays the person, the library checks the response.
 * `extra` parameters go on the URL; `pushed` replaces all of them by a request_uri (RFC 9126).
 */
export async function authorize(as, client, { scope = 'read write', pushed, extra = {} } = {}) {
  const codeVerifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const parameters = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: config.redirect_uri,
    response_type: 'code',
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...extra,
  })
  const url = new URL(as.authorization_endpoint)
  let pushedResponse
  if (pushed) {
    pushedResponse = await pushed(parameters)
    url.search = new URLSearchParams({
      client_id: client.client_id,
      request_uri: pushedResponse.request_uri,
    }).toString()
  } else {
    url.search = parameters.toString()
  }
  const { location } = await ask('authorize', { url: url.href })
  const callback = oauth.validateAuthResponse(as, client, new URL(location), state)
  return { callback, codeVerifier, url: url.href, pushedResponse }
}

/** RFC 6749 §4.1.3 with RFC 7636 §4.5: the code for tokens (with a proof, RFC 9449 §5). */
export async function exchangeCode(as, client, clientAuth, { callback, codeVerifier }, { DPoP } = {}) {
  const send = async () => {
    const response = await oauth.authorizationCodeGrantRequest(
      as, client, clientAuth, callback, config.redirect_uri, codeVerifier, { DPoP, ...insecure },
    )
    return oauth.processAuthorizationCodeResponse(as, client, response)
  }
  return DPoP ? withNonceRetry('token', send) : send()
}

/** RFC 6749 §6: a refresh (with a proof, RFC 9449 §5). */
export async function refresh(as, client, clientAuth, refreshToken, { DPoP, step = 'refresh' } = {}) {
  const send = async () => {
    const response = await oauth.refreshTokenGrantRequest(
      as, client, clientAuth, refreshToken, { DPoP, ...insecure },
    )
    return oauth.processRefreshTokenResponse(as, client, response)
  }
  return DPoP ? withNonceRetry(step, send) : send()
}

/**
 * What a refusal said: the RFC 6749 §5.2 error code of the body, whether the library raised it
 * from the body (ResponseBodyError) or, for a 401 with WWW-Authenticate, from the challenge.
 */
export async function refusal(error) {
  let body = null
  if (error?.response instanceof Response && !error.response.bodyUsed) {
    body = await error.response.json().catch(() => null)
  }
  return { refused: true, error: body?.error ?? error?.error ?? error?.code, status: error?.status ?? error?.response?.status }
}

/** What a token response said, without the tokens themselves. */
export function described(tokens) {
  return {
    token_type: tokens.token_type,
    expires_in: tokens.expires_in ?? null,
    scope: tokens.scope ?? null,
    has_refresh_token: typeof tokens.refresh_token === 'string',
  }
}

/** The API call every scenario ends with: Grantly's credentials resource (scope read). */
export function apiUrl() {
  return new URL(config.api_url)
}

/** A protected resource request (RFC 6750 §2.1, or RFC 9449 §7 with a DPoP handle). */
export async function callApi(accessToken, { DPoP, step = 'api' } = {}) {
  const send = async () => {
    const response = await oauth.protectedResourceRequest(
      accessToken,
      'GET',
      apiUrl(),
      new Headers({ accept: 'application/json' }),
      null,
      { DPoP, ...insecure },
    )
    return { status: response.status, body: await response.json().catch(() => null) }
  }
  return DPoP ? withNonceRetry(step, send) : send()
}

/**
 * The token sent as a plain Bearer token (RFC 6750 §2.1) by the library, no proof: a bound
 * token must be refused (RFC 9449 §7.2); the library parses the challenges of the 401.
 */
export async function callApiAsBearer(accessToken) {
  try {
    const response = await oauth.protectedResourceRequest(
      accessToken, 'GET', apiUrl(), new Headers({ accept: 'application/json' }), null, insecure,
    )
    return { status: response.status, challenges: [] }
  } catch (error) {
    if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error
    return { status: error.response.status, challenges: error.cause }
  }
}

/** The claims of a JWT, read without checking anything (to report what the server put in). */
export function peek(jwt) {
  const [header, payload] = jwt.split('.').slice(0, 2).map((part) =>
    JSON.parse(Buffer.from(part, 'base64url').toString('utf8')),
  )
  return { header, payload }
}
