exports.onExecutePostLogin = async (event, api) => {
  throw new Error('rule throws on purpose');
};
