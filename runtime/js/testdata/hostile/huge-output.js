exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/big', 'x'.repeat(2 << 20));
};
