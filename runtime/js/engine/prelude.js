// The compatibility layer between Auth0's Actions and Rules and claimsmith's
// rule commands. Run once per engine instance; main.go calls __load, __run
// and __finish. Everything a rule does is collected into one plain object
// that __finish serialises once: a single crossing per call.
(function (g) {
  'use strict';
  var state = null;
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
      if (state === null || state.out.log.length >= MAX_LOG_LINES) return;
      var parts = [];
      for (var i = 0; i < arguments.length; i++) parts.push(text(arguments[i]));
      var msg = parts.join(' ');
      if (msg.length > MAX_LOG_BYTES) msg = msg.slice(0, MAX_LOG_BYTES) + '…';
      state.out.log.push({ level: level, msg: msg });
    };
  }
  g.console = { log: logLine('info'), info: logLine('info'), warn: logLine('warn'), error: logLine('error'), debug: logLine('debug') };

  function newOut() {
    return {
      id_token: { claims: {} },
      access_token: { claims: {}, add_scopes: [], remove_scopes: [] },
      app_metadata: {}, user_metadata: {},
      access: { vote: 'abstain' },
      log: []
    };
  }
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
      state.out[tok].claims[name] = plain(value);
    };
  }
  function addScope(s) {
    var t = state.out.access_token;
    s = String(s);
    t.remove_scopes = t.remove_scopes.filter(function (x) { return x !== s; });
    if (t.add_scopes.indexOf(s) < 0) t.add_scopes.push(s);
  }
  function removeScope(s) {
    var t = state.out.access_token;
    s = String(s);
    t.add_scopes = t.add_scopes.filter(function (x) { return x !== s; });
    if (t.remove_scopes.indexOf(s) < 0) t.remove_scopes.push(s);
  }
  function deny(code) {
    return function (reason) {
      if (state.out.access.vote === 'deny') return;
      state.out.access = { vote: 'deny', reason: reason === undefined ? '' : String(reason), code: code };
    };
  }
  function metadata(which) {
    return function (key, value) {
      if (typeof key !== 'string' || key === '') throw new TypeError('the metadata key must be a non-empty string');
      state.out[which][key] = plain(value);
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
        if (state.out.access.vote === 'deny') return;
        state.out.access = { vote: 'deny', reason: reason === undefined ? '' : String(reason), code: String(code || 'access_denied') };
      }
    }),
    cache: Object.freeze(cache)
  });

  function obj(v) { return v !== null && typeof v === 'object' ? v : {}; }

  function actionEvent(ev, def) {
    ev.user = obj(ev.user);
    ev.user.app_metadata = obj(ev.user.app_metadata);
    ev.user.user_metadata = obj(ev.user.user_metadata);
    ev.user.identities = ev.user.identities || [];
    ev.client = obj(ev.client);
    ev.client.metadata = obj(ev.client.metadata);
    ev.connection = obj(ev.connection);
    ev.request = obj(ev.request);
    ev.request.query = obj(ev.request.query);
    ev.transaction = obj(ev.transaction);
    ev.transaction.requested_scopes = ev.transaction.requested_scopes || [];
    var a = obj(ev.authorization);
    ev.authorization = { roles: a.roles || [], groups: a.groups || [], permissions: a.permissions || [] };
    ev.stats = { logins_count: ev.user.logins_count || 0 };
    ev.secrets = def.secrets;
    ev.configuration = def.configuration;
    return ev;
  }

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

  function runRule(fn, ev, def) {
    ev.user = obj(ev.user);
    var user = ev.user;
    user.app_metadata = obj(user.app_metadata);
    user.user_metadata = obj(user.user_metadata);
    user.identities = user.identities || [];
    var client = obj(ev.client), conn = obj(ev.connection), req = obj(ev.request), tx = obj(ev.transaction);
    var requested = (tx.requested_scopes || []).map(String);
    var context = {
      clientID: client.client_id || '',
      clientName: client.name || '',
      clientMetadata: obj(client.metadata),
      connection: conn.name || '',
      connectionID: conn.id || '',
      connectionStrategy: conn.strategy || '',
      protocol: tx.protocol || '',
      request: {
        ip: req.ip || '', userAgent: req.user_agent || '', hostname: req.hostname || '',
        query: obj(req.query), body: {}, geoip: req.geoip ? {
          country_code: req.geoip.country_code, country_name: req.geoip.country_name,
          city_name: req.geoip.city_name, latitude: req.geoip.latitude, longitude: req.geoip.longitude,
          time_zone: req.geoip.time_zone
        } : {}
      },
      stats: { loginsCount: user.logins_count || 0 },
      authorization: { roles: (obj(ev.authorization).roles || []).slice() },
      idToken: {},
      accessToken: { scope: requested.slice() }
    };
    state.rulesPatch = function (which, md) {
      var p = plain(md);
      if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new TypeError('auth0.users.update' +
        (which === 'app_metadata' ? 'AppMetadata' : 'UserMetadata') + ': metadata must be an object');
      for (var k in p) state.out[which][k] = p[k];
    };
    g.configuration = def.configuration;
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
      for (k in obj(c.idToken)) state.out.id_token.claims[k] = plain(c.idToken[k]);
      var at = obj(c.accessToken);
      for (k in at) if (k !== 'scope') state.out.access_token.claims[k] = plain(at[k]);
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

  g.__run = function (style, entry, ev, def, trigger) {
    state = { out: newOut(), settled: false, err: undefined, style: style, rulesPatch: null };
    if (style === 'rules') {
      if (trigger !== 'post-login') {
        state.settled = true;
        return;
      }
      runRule(entry, ev, def);
      return;
    }
    var m2m = trigger === 'credentials-exchange';
    var fn = m2m ? entry.onExecuteCredentialsExchange : entry.onExecutePostLogin;
    if (typeof fn !== 'function') {
      state.settled = true;
      return;
    }
    var r = fn(actionEvent(ev, def), m2m ? m2mApi : loginApi);
    Promise.resolve(r).then(function () { state.settled = true; }, function (e) {
      state.settled = true;
      state.err = e === undefined ? new Error('the handler rejected without a reason') : e;
    });
  };

  g.__finish = function () {
    var s = state;
    state = null;
    if (!s.settled) {
      throw new Error(s.style === 'rules'
        ? 'the rule returned without calling its callback, and nothing left could call it (timers and network calls are not supported)'
        : 'the handler\'s promise never settled (timers and network calls are not supported)');
    }
    if (s.err !== undefined) throw s.err;
    return JSON.stringify(s.out);
  };
})(this);
