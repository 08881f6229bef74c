// The browser's part of sessionguard's passkey ceremonies. Each element
// marked data-passkey (templates/passkey.html) holds a button that runs one:
//
//   signin         passwordless sign-in from the login page
//   second-factor  the passkey after the password (/auth/mfa)
//   register       add a passkey (enrolment, account page)
//   form           re-authentication: the passkey's answer goes into the
//                  enclosing form, which is then submitted with the password
//
// A ceremony is two POSTs: data-begin answers the options, which the
// browser turns into a credential; data-finish (or the form) takes the
// credential's JSON and answers {"next": URL} on success (with
// "recovery_codes" when a first passkey brought new ones, which are shown
// here once and kept nowhere) or {"error": code, "message": text} on
// failure. The server keeps the ceremony's state in the session: the
// script holds nothing that a replay could use.
(function () {
  'use strict';
  if (window.sessionguardPasskeys) {
    return; // included twice on one page
  }
  window.sessionguardPasskeys = true;

  var supported = !!(window.PublicKeyCredential &&
    PublicKeyCredential.parseCreationOptionsFromJSON &&
    PublicKeyCredential.parseRequestOptionsFromJSON &&
    navigator.credentials && window.fetch);

  // own returns map's own entry for key, if any.
  function own(map, key) {
    return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
  }

  function Failure(message, code, next) {
    this.message = message;
    this.code = code;
    this.next = next;
  }

  // messages say what the error codes of the second-factor and session
  // answers mean, for those that carry no message of their own.
  var messages = {
    wrong_second_factor: 'That passkey was not accepted. Try again, or use another way to sign in.',
    throttled: 'Too many wrong attempts. Wait a few minutes and try again.',
    busy: 'The server is busy. Try again in a few seconds.',
    unavailable: 'The service cannot check sign-ins right now. Try again in a moment.'
  };

  // goTo says where an error code sends the browser: the step it belonged
  // to is over (the sign-in expired, or the session ended).
  var goTo = {
    unauthenticated: '/auth/login',
    reauthentication_required: function () {
      return '/auth/reauth?next=' + encodeURIComponent(location.pathname);
    }
  };

  // post sends body as JSON and resolves to the server's JSON answer, or
  // rejects with a Failure saying what went wrong.
  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Accept': 'application/json', 'Content-Type': 'application/json'},
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (answer) { return answer; }, function () { return {}; }).then(function (answer) {
        if (!r.ok) {
          throw new Failure(answer.message || own(messages, answer.error) || 'Something went wrong (' + r.status + '). Try again.',
            answer.error, answer.next);
        }
        return answer;
      });
    }, function () {
      throw new Failure('The server could not be reached. Check your connection and try again.');
    });
  }

  // browserFailure says why the browser's part of a ceremony failed, in
  // words a person can act on.
  function browserFailure(e, registering) {
    switch (e && e.name) {
      case 'NotAllowedError':
        return new Failure(registering ?
          'No passkey was created: the request was cancelled or timed out. Try again.' :
          'No passkey was used: the request was cancelled or timed out, or this device has no passkey for this site. Try again.');
      case 'InvalidStateError':
        return new Failure('This device already holds one of your passkeys for this site.');
      case 'SecurityError':
        return new Failure('This browser does not allow passkeys on this address.');
    }
    return new Failure('The passkey did not work (' + (e && e.name || 'unknown error') + '). Try again.');
  }

  function create(options) {
    return navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey)
    }).then(null, function (e) { throw browserFailure(e, true); });
  }

  function get(options) {
    return navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey)
    }).then(null, function (e) { throw browserFailure(e, false); });
  }

  // ceremonies run each kind of element's ceremony, resolving to the URL
  // to go to next (or nothing, when a form is submitted instead).
  var ceremonies = {
    signin: function (el) {
      return post(el.dataset.begin, {}).then(get).then(function (credential) {
        return post(el.dataset.finish, {credential: credential.toJSON(), next: el.dataset.next || ''});
      });
    },
    'second-factor': function (el) {
      return post(el.dataset.begin, {}).then(get).then(function (credential) {
        return post(el.dataset.finish, {credential: credential.toJSON()});
      });
    },
    register: function (el) {
      var name = el.querySelector('[data-passkey-name]');
      return post(el.dataset.begin, {}).then(create).then(function (credential) {
        return post(el.dataset.finish, {credential: credential.toJSON(), name: name ? name.value : ''});
      });
    },
    form: function (el) {
      var form = el.closest('form');
      if (!form.reportValidity()) {
        return Promise.resolve({});
      }
      return post(el.dataset.begin, {}).then(get).then(function (credential) {
        el.querySelector('[data-passkey-answer]').value = JSON.stringify(credential.toJSON());
        form.submit();
        return {};
      });
    }
  };

  // showCodes shows new recovery codes in place of the page's content, with
  // the link onwards; they exist nowhere else.
  function showCodes(el, codes, next) {
    var section = el.parentNode.querySelector('[data-passkey-codes]');
    var main = document.getElementById('main') || document.body;
    if (!section) {
      location.assign(next);
      return;
    }
    var list = section.querySelector('[data-passkey-code-list]');
    codes.forEach(function (code) {
      var item = document.createElement('li');
      var text = document.createElement('code');
      text.textContent = code;
      item.appendChild(text);
      list.appendChild(item);
    });
    section.querySelector('[data-passkey-continue]').href = next;
    Array.prototype.forEach.call(main.children, function (child) { child.hidden = true; });
    main.appendChild(section);
    section.hidden = false;
    document.title = section.querySelector('h1').textContent + ' · sessionguard';
    section.focus();
  }

  function setUp(el) {
    var run = ceremonies[el.dataset.passkey];
    var button = el.querySelector('[data-passkey-start]');
    var status = el.querySelector('.passkey-status');
    if (!run || !button) {
      return;
    }
    el.hidden = false;
    var unsupported = el.parentNode.querySelector('[data-passkey-unsupported]');
    if (unsupported) {
      unsupported.hidden = true;
    }
    button.addEventListener('click', function () {
      button.disabled = true;
      status.textContent = '';
      run(el).then(function (answer) {
        if (answer && answer.recovery_codes) {
          showCodes(el, answer.recovery_codes, answer.next || '/');
          return;
        }
        if (answer && answer.next) {
          location.assign(answer.next);
          return;
        }
        button.disabled = false;
      }, function (f) {
        button.disabled = false;
        var target = f && (f.next || own(goTo, f.code));
        if (target) {
          // This step makes sense no more; the page it leads to says why.
          location.assign(typeof target === 'function' ? target() : target);
          return;
        }
        status.textContent = (f && f.message) || 'Something went wrong. Try again.';
      });
    });
  }

  function start() {
    if (!supported) {
      return;
    }
    document.querySelectorAll('[data-passkey]').forEach(setUp);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
