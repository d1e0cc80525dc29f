function ipAddressBlocklist(user, context, callback) {
  const blocklist = ['192.0.2.66', '192.0.2.67'];
  if (blocklist.indexOf(context.request.ip) !== -1) {
    return callback(new UnauthorizedError('Access denied from this IP address.'));
  }
  return callback(null, user, context);
}
