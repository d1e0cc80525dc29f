function queryStringClaims(user, context, callback) {
  const q = context.request.query || {};
  if (q.lang) {
    context.idToken['https://example.com/lang'] = q.lang;
  }
  if (q.tenant) {
    context.accessToken['https://example.com/tenant'] = q.tenant;
  }
  callback(null, user, context);
}
