function ipAddressAllowlist(user, context, callback) {
  const allowlist = ['198.51.100.23', '203.0.113.7']; // authorized IPs
  const userHasAccess = allowlist.some(function (ip) {
    return context.request.ip === ip;
  });
  if (!userHasAccess) return callback(new Error('Access denied from this IP address.'));
  return callback(null, user, context);
}
