/*
 * A wallet built on the OpenWallet Foundation's @openid4vc libraries (the ones Credo uses): it follows an
 * openid-credential-offer:// link the way a phone wallet does (offer by value or by reference, issuer and
 * authorization server metadata, pre-authorized code with the PIN when there is one, nonce, key proof,
 * credential) and prints what it received.
 *
 * stdin:  {"offer": "openid-credential-offer://…", "txCode": "123456" | null, "key": "did:key" | "jwk"}
 * stdout: {"holder": "<did:key or the JWK>", "credentials": {"<format>": <credential>, …}}
 * A refusal by the issuer exits 1 with {"error": …} on stdout.
 */
import {createHash, generateKeyPairSync, randomBytes, sign} from 'node:crypto';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {clientAuthenticationAnonymous} from '@openid4vc/oauth2';
import {Openid4vciClient} from '@openid4vc/openid4vci';
import {setGlobalConfig} from '@openid4vc/utils';
import {readStdin} from './common.mjs';

setGlobalConfig({allowInsecureUrls: true}); // the test nodes listen on http://127.0.0.1

const input = JSON.parse(await readStdin());
const {publicKey, privateKey} = generateKeyPairSync('ed25519');
const publicJwk = publicKey.export({format: 'jwk'});

async function didKeySigner() {
  const {publicKeyMultibase} = await Ed25519Multikey.fromJwk({jwk: publicJwk});
  const did = `did:key:${publicKeyMultibase}`;
  return {method: 'did', didUrl: `${did}#${publicKeyMultibase}`, alg: 'EdDSA', holder: did};
}

const signer = input.key === 'jwk'
  ? {method: 'jwk', publicJwk, alg: 'EdDSA', holder: publicJwk}
  : await didKeySigner();

const b64 = value => Buffer.from(JSON.stringify(value)).toString('base64url');
const client = new Openid4vciClient({
  callbacks: {
    fetch,
    hash: (data, alg) => createHash(alg.replace('-', '')).update(data).digest(),
    generateRandom: length => randomBytes(length),
    clientAuthentication: clientAuthenticationAnonymous(),
    signJwt: async (_jwtSigner, {header, payload}) => {
      const signingInput = `${b64(header)}.${b64(payload)}`;
      const signature = sign(null, Buffer.from(signingInput), privateKey).toString('base64url');
      return {jwt: `${signingInput}.${signature}`, signerJwk: publicJwk};
    }
  }
});

try {
  const credentialOffer = await client.resolveCredentialOffer(input.offer);
  const issuerMetadata = await client.resolveIssuerMetadata(credentialOffer.credential_issuer);
  const {accessTokenResponse} = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
    credentialOffer, issuerMetadata, txCode: input.txCode ?? undefined
  });
  const credentials = {};
  for(const credentialConfigurationId of credentialOffer.credential_configuration_ids) {
    const {c_nonce: nonce} = await client.requestNonce({issuerMetadata});
    const {jwt} = await client.createCredentialRequestJwtProof({
      issuerMetadata, credentialConfigurationId, nonce, signer: {...signer, holder: undefined}
    });
    const {credentialResponse} = await client.retrieveCredentials({
      issuerMetadata, accessToken: accessTokenResponse.access_token, credentialConfigurationId, proofs: {jwt: [jwt]}
    });
    const format = issuerMetadata.credentialIssuer.credential_configurations_supported[credentialConfigurationId].format;
    credentials[format] = credentialResponse.credentials[0].credential;
  }
  process.stdout.write(JSON.stringify({holder: signer.holder, credentials}));
} catch(error) {
  const response = error.response ? await error.response.clone?.().text?.().catch(() => '') : undefined;
  process.stdout.write(JSON.stringify({error: `${error.name}: ${error.message}`, response,
    body: error.errorResponse ?? error.credentialErrorResponseResult ?? undefined}));
  process.exit(1);
}
