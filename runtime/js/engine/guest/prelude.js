// The compatibility layer between Auth0's Actions and Rules and claimsmith's
// rule commands. Run once per engine instance: guest.go calls this function
// with the global object and the api's Go functions (native, api.go), and
// keeps what it returns. An Action's handler is called from Go with the
// api objects made here; what the api records lives in Go and is
// serialised there once per call.
(function (g, native) {
  'use strict';
  var NativePromise = Promise;
  var MAX_LOG_BYTES = 4096; // and at most 100 lines (api.go)

  function unsupported(name, how) {
    return function () {
      throw new Error(name + ' is not supported by claimsmith: ' + how);
    };
  }
  var NO_UI = 'claimsmith runs at token time, without Auth0\'s login pages or sessions; ' +
    'move the step into your identity provider\'s login flow';
  var NO_NET = 'rules get no network; look data up in the authorization store ' +
    '(event.authorization) or hand it over in client metadata or secrets';

  function UnauthorizedError(message) {
    var e = new Error(message === undefined ? '' : String(message));
    Object.setPrototypeOf(e, UnauthorizedError.prototype);
    return e;
  }
  UnauthorizedError.prototype = Object.create(Error.prototype, {
    constructor: { value: UnauthorizedError, writable: true, configurable: true },
    name: { value: 'UnauthorizedError', writable: true, configurable: true }
  });
  g.UnauthorizedError = UnauthorizedError;

  var NETWORK_MODULES = ['request', 'axios', 'auth0', 'node-fetch', 'got', 'superagent', 'http', 'https',
    'http2', 'net', 'tls', 'dns', 'dgram', 'fs', 'child_process', 'aws-sdk', 'mongodb', 'pg', 'mysql', 'redis',
    'jsonwebtoken', 'xmldom', 'request-promise'];
  function require(name) {
    var base = String(name).split('@')[0].split('/')[0] || String(name);
    if (NETWORK_MODULES.indexOf(base) >= 0 || NETWORK_MODULES.indexOf(String(name)) >= 0) {
      throw new Error("require('" + name + "') is not supported by claimsmith: " + NO_NET);
    }
    throw new Error("require('" + name + "') is not available: bundle pure npm modules into the rule file " +
      'ahead of time (esbuild rule.js --bundle --platform=neutral --format=cjs)');
  }
  g.require = require;
  g.fetch = unsupported('fetch', NO_NET);
  g.setTimeout = unsupported('setTimeout', 'timers cannot outlive the call; use promises that settle within it');
  g.setInterval = unsupported('setInterval', 'timers cannot outlive the call');
  g.setImmediate = unsupported('setImmediate', 'timers cannot outlive the call');
  g.global = g;

  function text(v) {
    if (typeof v === 'string') return v;
    try {
      var s = JSON.stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      return String(v);
    }
  }
  function logLine(level) {
    return function () {
      if (!native.logOpen()) return;
      var parts = [];
      for (var i = 0; i < arguments.length; i++) parts.push(text(arguments[i]));
      var msg = parts.join(' ');
      if (msg.length > MAX_LOG_BYTES) msg = msg.slice(0, MAX_LOG_BYTES) + '…';
      native.log(level, msg);
    };
  }
  g.console = { log: logLine('info'), info: logLine('info'), warn: logLine('warn'), error: logLine('error'), debug: logLine('debug') };

  // Parts of the commands, as api.go numbers them.
  var ID_TOKEN = 0, ACCESS_TOKEN = 1, APP_METADATA = 2, USER_METADATA = 3;

  // plain copies a value as JSON would keep it (functions and undefined
  // become null, Dates their ISO string). The api's Go functions copy the
  // same way (api.go plainValue); the Rules' metadata patches use this one
  // to check what they were given is an object.
  function plain(v, depth) {
    depth = depth || 0;
    if (depth > 64) throw new TypeError('value nested too deeply (or circular)');
    if (v === undefined || v === null) return null;
    var t = typeof v;
    if (t === 'string' || t === 'boolean') return v;
    if (t === 'number') return isFinite(v) ? v : null;
    if (t !== 'object') return null;
    if (typeof v.toJSON === 'function') return plain(v.toJSON(), depth + 1);
    var out, i;
    if (Array.isArray(v)) {
      out = new Array(v.length);
      for (i = 0; i < v.length; i++) out[i] = plain(v[i], depth + 1);
      return out;
    }
    out = {};
    var keys = Object.keys(v);
    for (i = 0; i < keys.length; i++) {
      var x = v[keys[i]];
      if (x !== undefined && typeof x !== 'function') out[keys[i]] = plain(x, depth + 1);
    }
    return out;
  }

  var cache = {
    get: function (key) { return native.cache('get', String(key)); },
    set: function (key, value, options) { return native.cache('set', String(key), String(value), options || {}); },
    delete: function (key) { return native.cache('delete', String(key)); }
  };

  var loginApi = Object.freeze({
    idToken: Object.freeze({ setCustomClaim: native.idTokenClaim }),
    accessToken: Object.freeze({ setCustomClaim: native.accessTokenClaim, addScope: native.addScope, removeScope: native.removeScope }),
    access: Object.freeze({ deny: native.deny }),
    user: Object.freeze({ setAppMetadata: native.appMetadata, setUserMetadata: native.userMetadata }),
    cache: Object.freeze(cache),
    redirect: Object.freeze({
      sendUserTo: unsupported('api.redirect.sendUserTo', NO_UI),
      encodeToken: unsupported('api.redirect.encodeToken', NO_UI),
      validateToken: unsupported('api.redirect.validateToken', NO_UI)
    }),
    multifactor: Object.freeze({ enable: unsupported('api.multifactor.enable', NO_UI) }),
    authentication: Object.freeze({
      challengeWith: unsupported('api.authentication.challengeWith', NO_UI),
      challengeWithAny: unsupported('api.authentication.challengeWithAny', NO_UI),
      enrollWith: unsupported('api.authentication.enrollWith', NO_UI),
      enrollWithAny: unsupported('api.authentication.enrollWithAny', NO_UI),
      recordMethod: unsupported('api.authentication.recordMethod', NO_UI),
      setPrimaryUser: unsupported('api.authentication.setPrimaryUser', NO_UI)
    }),
    samlResponse: Object.freeze({ setAttribute: unsupported('api.samlResponse', 'claimsmith issues no SAML responses') })
  });
  var m2mApi = Object.freeze({
    accessToken: Object.freeze({ setCustomClaim: native.accessTokenClaim }),
    // credentials-exchange: deny(code, reason), code an OAuth error code.
    access: Object.freeze({ deny: native.m2mDeny }),
    cache: Object.freeze(cache)
  });

  function obj(v) { return v !== null && typeof v === 'object' ? v : {}; }

  // The Rules' `auth0` object: only the metadata writes, which become
  // patches; the rest of the management API needs the network. rulesCall
  // is the call of the Rule in flight (runRule).
  var rulesCall = 0;
  function patch(which) {
    return function (userId, md) {
      if (rulesCall === 0 || native.callID() !== rulesCall) {
        throw new TypeError('auth0.users is only available to Rules, while they run');
      }
      var p = plain(md);
      if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new TypeError('auth0.users.update' +
        (which === APP_METADATA ? 'AppMetadata' : 'UserMetadata') + ': metadata must be an object');
      native.part(which);
      for (var k in p) native.put(which, k, p[k]);
      return Promise.resolve();
    };
  }
  var auth0 = { users: { updateAppMetadata: patch(APP_METADATA), updateUserMetadata: patch(USER_METADATA) } };
  g.auth0 = auth0;

  function scopes(v) {
    if (Array.isArray(v)) return v.map(String);
    if (typeof v === 'string') return v.split(' ').filter(function (s) { return s !== ''; });
    return [];
  }

  // runRule calls a Rule with the user and context the host shaped
  // (runtime/js/event.go). Its callback settles the call it was made for.
  function runRule(fn, ev, configuration) {
    var id = native.callID();
    var user = ev.user, context = ev.context;
    var requested = context.accessToken.scope.slice();
    rulesCall = id;
    g.configuration = configuration;
    var called = false;
    function callback(err, u, c) {
      if (called || native.callID() !== id) return;
      called = true;
      if (err) {
        if (err instanceof UnauthorizedError || err.name === 'UnauthorizedError') {
          native.ruleDeny(err.message || '');
          native.settle(id);
        } else {
          native.fail(id, err);
        }
        return;
      }
      native.settle(id);
      c = obj(c || context);
      if (c.multifactor !== undefined) {
        native.fail(id, new Error('context.multifactor is not supported by claimsmith: ' + NO_UI));
        return;
      }
      if (c.redirect !== undefined) {
        native.fail(id, new Error('context.redirect is not supported by claimsmith: ' + NO_UI));
        return;
      }
      var k;
      for (k in obj(c.idToken)) native.put(ID_TOKEN, k, c.idToken[k]);
      var at = obj(c.accessToken);
      for (k in at) if (k !== 'scope') native.put(ACCESS_TOKEN, k, at[k]);
      if (at.scope !== undefined) {
        var now = scopes(at.scope);
        now.forEach(function (s) { if (requested.indexOf(s) < 0) native.addScope(s); });
        requested.forEach(function (s) { if (now.indexOf(s) < 0) native.removeScope(s); });
      }
    }
    fn(user, context, callback);
  }

  return {
    login: loginApi,
    m2m: m2mApi,
    isArray: Array.isArray,
    // load returns what a rule's source evaluated to: a Rule's function,
    // or an Action's exports.
    load: function (style, fn) {
      if (style === 'rules') {
        if (typeof fn !== 'function') throw new TypeError('a Rule must be a function (user, context, callback)');
        return fn;
      }
      var module = { exports: {} };
      fn(module.exports, module, require);
      var ex = obj(module.exports);
      if (typeof ex.onExecutePostLogin !== 'function' && typeof ex.onExecuteCredentialsExchange !== 'function') {
        throw new TypeError('an Action must assign exports.onExecutePostLogin or exports.onExecuteCredentialsExchange');
      }
      return ex;
    },
    runRule: runRule,
    // thenable settles the call through a handler's own thenable (the job
    // queue runs it before the call returns to Go).
    thenable: function (r) {
      var id = native.callID();
      NativePromise.resolve(r).then(function () { native.settle(id); }, function (e) { native.fail(id, e); });
    },
    // raise throws v, for the error message of what a handler rejected
    // with or a Rule's callback was given (guest.go describe).
    raise: function (v) { throw v; }
  };
})
