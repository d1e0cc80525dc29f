/**
 * An Auth0 post-login Action, as it runs on Auth0 — claimsmith runs it
 * unchanged (`js: action.js` in the pipeline). Put it after the
 * `authorization` rule so event.authorization holds the user's roles.
 */
exports.onExecutePostLogin = async (event, api) => {
  const namespace = 'https://example.com/';

  // Clients that set require_verified_email in their metadata only let
  // verified users in.
  if (event.client.metadata.require_verified_email === 'true' && !event.user.email_verified) {
    return api.access.deny('Please verify your e-mail address before logging in.');
  }

  api.idToken.setCustomClaim(namespace + 'roles', event.authorization.roles);
  api.accessToken.setCustomClaim(namespace + 'roles', event.authorization.roles);
  if (event.request.query.ui_locales) {
    api.idToken.setCustomClaim(namespace + 'locale', event.request.query.ui_locales);
  }
  if (event.authorization.roles.includes('admin')) {
    api.accessToken.addScope('admin');
  }

  // Persisted in the user's app_metadata by claimsmith (and returned to
  // the IdP as a patch).
  api.user.setAppMetadata('last_client', event.client.client_id);
  console.log(`login of ${event.user.user_id} to ${event.client.name}`);
};

// Machine-to-machine tokens (client credentials).
exports.onExecuteCredentialsExchange = async (event, api) => {
  api.accessToken.setCustomClaim('https://example.com/client_name', event.client.name);
};
