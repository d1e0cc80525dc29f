exports.onExecutePostLogin = async (event, api) => {
  if (!event.user.email || !event.user.email_verified) return;
  const roles = event.user.email.endsWith('@example.com') ? ['admin'] : ['user'];
  api.user.setAppMetadata('roles', roles);
  api.idToken.setCustomClaim('https://example.com/roles', roles);
};
