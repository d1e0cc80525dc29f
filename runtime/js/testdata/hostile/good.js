exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/ok', event.user.user_id);
};
