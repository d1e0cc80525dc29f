exports.onExecutePostLogin = async (event, api) => {
  const allowlist = ['198.51.100.23', '203.0.113.7'];
  if (!allowlist.includes(event.request.ip)) {
    throw new Error('Access denied from this IP address.');
  }
};
