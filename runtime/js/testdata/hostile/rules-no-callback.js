function (user, context, callback) {
  // never calls back
}
