/**
 * A classic Auth0 Rule (function (user, context, callback)), as it ran on
 * Auth0 until Rules reached end of life — claimsmith runs it unchanged
 * (`js: rule.js` in the pipeline).
 */
function enrichTokens(user, context, callback) {
  const namespace = 'https://example.com/';

  // Only employees (the corporate connection) may use internal apps.
  if (context.clientMetadata.internal === 'true' && context.connectionStrategy !== 'ad') {
    return callback(new UnauthorizedError('This application is for employees only.'));
  }

  context.idToken[namespace + 'roles'] = context.authorization.roles;
  context.accessToken[namespace + 'connection'] = context.connection;

  // Count logins in app_metadata: the update persists, as on Auth0.
  user.app_metadata = user.app_metadata || {};
  user.app_metadata.logins_here = (user.app_metadata.logins_here || 0) + 1;
  auth0.users.updateAppMetadata(user.user_id, user.app_metadata)
    .then(function () {
      callback(null, user, context);
    })
    .catch(function (err) {
      callback(err);
    });
}
