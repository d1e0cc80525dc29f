exports.onExecutePostLogin = async (event, api) => {
  const last = new Date(event.user.last_password_reset || event.user.created_at);
  const days = (Date.now() - last.getTime()) / (1000 * 60 * 60 * 24);
  if (days > 30) {
    api.access.deny('please change your password');
  }
};
