exports.onExecutePostLogin = async (event, api) => {
  const s = 'x'.repeat(2 ** 30);
  api.idToken.setCustomClaim('https://example.com/s', s.length);
};
