exports.onExecutePostLogin = async (event, api) => {
  const namespace = 'https://example.com/';
  api.idToken.setCustomClaim(namespace + 'connection', event.connection.name);
  if (event.connection.strategy === 'ad' || event.connection.strategy === 'waad') {
    api.idToken.setCustomClaim(namespace + 'employee', true);
    api.accessToken.addScope('read:intranet');
  } else {
    api.accessToken.removeScope('admin');
  }
};
