exports.onExecutePostLogin = async (event, api) => {
  const keep = [];
  for (;;) keep.push(new ArrayBuffer(1 << 30));
};
