exports.onExecutePostLogin = async (event, api) => {
  const blocklist = ['192.0.2.66', '192.0.2.67'];
  if (blocklist.includes(event.request.ip)) {
    api.access.deny('Access denied from this IP address.');
  }
};
