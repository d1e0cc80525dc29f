// The compatibility layer between Auth0's Actions and Rules and claimsmith's
// rule commands. Run once per engine instance; guest.go calls __load, __run
// and __finish. Everything a rule does is collected into one plain object
// that guest.go serialises once (output.go): a single crossing per call. Its parts are
// made when first written, so a call that sets one claim builds and
// serialises only that.
(function (g) {
  'use strict';
  var state = null;
  var NativePromise = Promise;
  var MAX_LOG_LINES = 100, MAX_LOG_BYTES = 4096;

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
      if (state === null) return;
      var log = part('log');
      if (log.length >= MAX_LOG_LINES) return;
      var parts = [];
      for (var i = 0; i < arguments.length; i++) parts.push(text(arguments[i]));
      var msg = parts.join(' ');
      if (msg.length > MAX_LOG_BYTES) msg = msg.slice(0, MAX_LOG_BYTES) + '…';
      log.push({ level: level, msg: msg });
    };
  }
  g.console = { log: logLine('info'), info: logLine('info'), warn: logLine('warn'), error: logLine('error'), debug: logLine('debug') };

  // part returns the output's part, made on first use (an absent part
  // means: nothing to do, abstain).
  function part(name) {
    var o = state.out[name];
    if (o === undefined) {
      if (name === 'id_token') o = { claims: {} };
      else if (name === 'access_token') o = { claims: {}, add_scopes: [], remove_scopes: [] };
      else if (name === 'log') o = [];
      else o = {};
      state.out[name] = o;
    }
    return o;
  }
  function denied() { return state.out.access !== undefined && state.out.access.vote === 'deny'; }
  // plain copies a value as JSON would keep it (functions and undefined
  // become null, Dates their ISO string), without a round trip through
  // JSON text, which goja parses slowly.
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
  function claim(tok) {
    return function (name, value) {
      if (typeof name !== 'string' || name === '') throw new TypeError('setCustomClaim: the claim name must be a non-empty string');
      part(tok).claims[name] = plain(value);
    };
  }
  function addScope(s) {
    var t = part('access_token');
    s = String(s);
    t.remove_scopes = t.remove_scopes.filter(function (x) { return x !== s; });
    if (t.add_scopes.indexOf(s) < 0) t.add_scopes.push(s);
  }
  function removeScope(s) {
    var t = part('access_token');
    s = String(s);
    t.add_scopes = t.add_scopes.filter(function (x) { return x !== s; });
    if (t.remove_scopes.indexOf(s) < 0) t.remove_scopes.push(s);
  }
  function deny(code) {
    return function (reason) {
      if (denied()) return;
      state.out.access = { vote: 'deny', reason: reason === undefined ? '' : String(reason), code: code };
    };
  }
  function metadata(which) {
    return function (key, value) {
      if (typeof key !== 'string' || key === '') throw new TypeError('the metadata key must be a non-empty string');
      part(which)[key] = plain(value);
    };
  }

  var cache = {
    get: function (key) { return g.__cache('get', String(key)); },
    set: function (key, value, options) { return g.__cache('set', String(key), String(value), options || {}); },
    delete: function (key) { return g.__cache('delete', String(key)); }
  };

  var loginApi = Object.freeze({
    idToken: Object.freeze({ setCustomClaim: claim('id_token') }),
    accessToken: Object.freeze({ setCustomClaim: claim('access_token'), addScope: addScope, removeScope: removeScope }),
    access: Object.freeze({ deny: deny('access_denied') }),
    user: Object.freeze({ setAppMetadata: metadata('app_metadata'), setUserMetadata: metadata('user_metadata') }),
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
    accessToken: Object.freeze({ setCustomClaim: claim('access_token') }),
    // credentials-exchange: deny(code, reason), code an OAuth error code.
    access: Object.freeze({
      deny: function (code, reason) {
        if (denied()) return;
        state.out.access = { vote: 'deny', reason: reason === undefined ? '' : String(reason), code: String(code || 'access_denied') };
      }
    }),
    cache: Object.freeze(cache)
  });

  function obj(v) { return v !== null && typeof v === 'object' ? v : {}; }

  // The Rules' `auth0` object: only the metadata writes, which become
  // patches; the rest of the management API needs the network.
  var auth0 = {
    users: {
      updateAppMetadata: function (userId, md) {
        state.rulesPatch('app_metadata', md);
        return Promise.resolve();
      },
      updateUserMetadata: function (userId, md) {
        state.rulesPatch('user_metadata', md);
        return Promise.resolve();
      }
    }
  };
  g.auth0 = auth0;

  function scopes(v) {
    if (Array.isArray(v)) return v.map(String);
    if (typeof v === 'string') return v.split(' ').filter(function (s) { return s !== ''; });
    return [];
  }

  // runRule calls a Rule with the user and context the host shaped
  // (runtime/js/event.go).
  function runRule(fn, ev, configuration) {
    var user = ev.user, context = ev.context;
    var requested = context.accessToken.scope.slice();
    state.rulesPatch = function (which, md) {
      var p = plain(md);
      if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new TypeError('auth0.users.update' +
        (which === 'app_metadata' ? 'AppMetadata' : 'UserMetadata') + ': metadata must be an object');
      var o = part(which);
      for (var k in p) o[k] = p[k];
    };
    g.configuration = configuration;
    var called = false;
    function callback(err, u, c) {
      if (called) return;
      called = true;
      state.settled = true;
      if (err) {
        if (err instanceof UnauthorizedError || err.name === 'UnauthorizedError') {
          state.out.access = { vote: 'deny', reason: err.message || '', code: 'unauthorized' };
        } else {
          state.err = err;
        }
        return;
      }
      c = obj(c || context);
      if (c.multifactor !== undefined) {
        state.err = new Error('context.multifactor is not supported by claimsmith: ' + NO_UI);
        return;
      }
      if (c.redirect !== undefined) {
        state.err = new Error('context.redirect is not supported by claimsmith: ' + NO_UI);
        return;
      }
      var k;
      for (k in obj(c.idToken)) part('id_token').claims[k] = plain(c.idToken[k]);
      var at = obj(c.accessToken);
      for (k in at) if (k !== 'scope') part('access_token').claims[k] = plain(at[k]);
      if (at.scope !== undefined) {
        var now = scopes(at.scope);
        now.forEach(function (s) { if (requested.indexOf(s) < 0) addScope(s); });
        requested.forEach(function (s) { if (now.indexOf(s) < 0) removeScope(s); });
      }
    }
    fn(user, context, callback);
  }

  g.__load = function (style, fn) {
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
  };

  // __run calls the rule. The event is shaped by the host already
  // (runtime/js/event.go): an Action's, with secrets and configuration
  // (guest/event.go), or a Rule's {user, context}; Rules run at login only,
  // the host does not call them otherwise. It returns an Action's promise:
  // guest.go reads its state once the call's jobs ran and hands it to
  // __finish.
  g.__run = function (style, entry, ev, configuration, trigger) {
    state = { out: {}, settled: false, err: undefined, style: style, rulesPatch: null };
    if (style === 'rules') {
      runRule(entry, ev, configuration);
      return;
    }
    var m2m = trigger === 'credentials-exchange';
    var fn = m2m ? entry.onExecuteCredentialsExchange : entry.onExecutePostLogin;
    if (typeof fn !== 'function') {
      state.settled = true;
      return;
    }
    var r = fn(ev, m2m ? m2mApi : loginApi);
    if (r instanceof NativePromise) return r;
    if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {
      // A thenable of the handler's own: settled through the job queue.
      var s = state;
      NativePromise.resolve(r).then(function () { s.settled = true; }, function (e) { rejected(s, e); });
      return undefined;
    }
    state.settled = true;
    return undefined;
  };

  function rejected(s, e) {
    s.settled = true;
    s.err = e === undefined ? new Error('the handler rejected without a reason') : e;
  }

  // __finish(promise, reason): promise is the state of the Action's
  // promise ('fulfilled', 'rejected' with reason, 'pending'), or 'other'
  // when the call returned none (a Rule, a plain function, a thenable).
  g.__finish = function (promise, reason) {
    var s = state;
    state = null;
    if (promise === 'fulfilled') s.settled = true;
    else if (promise === 'rejected') rejected(s, reason);
    if (!s.settled) {
      throw new Error(s.style === 'rules'
        ? 'the rule returned without calling its callback, and nothing left could call it (timers and network calls are not supported)'
        : 'the handler\'s promise never settled (timers and network calls are not supported)');
    }
    if (s.err !== undefined) throw s.err;
    return s.out;
  };
})(this);
