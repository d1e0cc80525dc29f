exports.onExecutePostLogin = async (event, api) => {
  while (true) {}
};
