exports.onExecutePostLogin = async (event, api) => {
  await new Promise(() => {});
};
