exports.onExecutePostLogin = async (event, api) => {
  const q = event.request.query || {};
  if (q.lang) api.idToken.setCustomClaim('https://example.com/lang', q.lang);
  if (q.tenant) api.accessToken.setCustomClaim('https://example.com/tenant', q.tenant);
};
