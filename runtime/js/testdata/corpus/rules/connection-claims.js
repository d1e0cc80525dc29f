function connectionClaims(user, context, callback) {
  const namespace = 'https://example.com/';
  context.idToken[namespace + 'connection'] = context.connection;
  if (context.connectionStrategy === 'ad' || context.connectionStrategy === 'waad') {
    context.idToken[namespace + 'employee'] = true;
    context.accessToken.scope = context.accessToken.scope.concat(['read:intranet']);
  } else {
    context.accessToken.scope = context.accessToken.scope.filter(function (s) { return s !== 'admin'; });
  }
  callback(null, user, context);
}
