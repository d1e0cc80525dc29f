exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/greeting', 'Hello, ' + event.user.name);
  console.log('greeted', event.user.user_id);
};
