exports.onExecutePostLogin = async (event, api) => {
  if (event.client.name === 'Dashboard') {
    const d = new Date().getDay();
    if (d === 0 || d === 6) {
      api.access.deny('This app is available during the week');
    }
  }
};
