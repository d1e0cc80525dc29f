exports.onExecutePostLogin = async (event, api) => {
  const allowed = ['example.com', 'example.org'];
  if (!event.user.email || !event.user.email_verified) {
    return api.access.deny('Access denied.');
  }
  const domain = event.user.email.split('@').pop().toLowerCase();
  if (!allowed.includes(domain)) {
    api.access.deny('Access denied.');
  }
};
